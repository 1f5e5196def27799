/* consumer.cpp - the C++ consumer: a point in a template and one in user_lib.c, both catalogued
 * and fired. Prints "consumer ok". */
#include <errinj.hpp>

#include <cstdio>
#include <cstring>

extern "C" int user_lib_call(void);

template <class T> int templated(T)
{
    return ERRINJ_EXCEPTION("consumer_main_point", -42);
}

int main()
{
    errinj_set_log(nullptr, nullptr);
    int listed = 0;
    errinj_list_points(
        [](const errinj_point *p, void *arg) {
            if (std::strcmp(p->name, "consumer_main_point") == 0 || std::strcmp(p->name, "consumer_lib_point") == 0)
                ++*static_cast<int *>(arg);
        },
        &listed);
    if (listed != 2) {
        std::fprintf(stderr, "catalogue lists %d of the 2 points\n", listed);
        return 1;
    }
    errinj::scoped_enable a("consumer_main_point"), b("consumer_lib_point");
    if (templated(1) != -42 || templated('c') != -42 || user_lib_call() != -43) {
        std::fprintf(stderr, "a point did not fire\n");
        return 1;
    }
    std::printf("consumer ok\n");
    return 0;
}
