/*
 * sites.cpp - every point form in every C++ context: free, static and inline functions, function
 * and class templates (two instantiations each), in-class and out-of-class inline members,
 * lambdas (generic ones from C++14), named, nested and anonymous namespaces; with C++17 also
 * errinj.hpp's callable forms, ERRINJ_THROW, scoped_enable and subscription.
 *
 * Built by run.sh with g++ and clang++ for C++11, 17 and 20, with and without ERRINJ_DISABLE.
 * Normal build: every site must be in the catalogue (name, type, this file) and fire in every
 * instantiation. Disabled build: linked without liberrinj, every point yields its "off" value.
 */
#if __cplusplus >= 201703L
#include <errinj.hpp>
#else
#include <errinj.h>
#endif

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>

static int failures;
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);          \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

#ifdef ERRINJ_DISABLE
static const bool on = false;
#else
static const bool on = true;
#endif

static void c_lambda(void *arg)
{
    ++*static_cast<int *>(arg);
}

static int c_handler(errinj_handler *h, void *arg)
{
    (void)h;
    return *static_cast<int *>(arg);
}

/* Every site of this file, with its type: the catalogue must list exactly these from this file. */
static const char *const expected[][2] = {
    {"cxx_free_exception", "exception"}, {"cxx_free_sleep", "sleep"},
    {"cxx_static_enter", "enter"},       {"cxx_inline_lambda", "lambda"},
    {"cxx_tmpl_exception", "exception"}, {"cxx_tmpl_handler", "handler"},
    {"cxx_class_tmpl_enter", "enter"},   {"cxx_member_wait", "handler"},
    {"cxx_member_out_exception", "exception"}, {"cxx_lambda_enter", "enter"},
    {"cxx_ns_exception", "exception"},   {"cxx_nested_ns_enter", "enter"},
    {"cxx_anon_ns_exception", "exception"},
#if __cplusplus >= 201402L
    {"cxx_generic_lambda_exception", "exception"},
#endif
#if __cplusplus >= 201703L
    {"cxx_hpp_lambda", "lambda"},        {"cxx_hpp_handler", "handler"},
    {"cxx_hpp_handler_noarg", "handler"}, {"cxx_hpp_throw", "exception"},
    {"cxx_hpp_tmpl_lambda", "lambda"},
#endif
};

int free_exception()
{
    return ERRINJ_EXCEPTION("cxx_free_exception", -5);
}

void free_sleep()
{
    ERRINJ_SLEEP("cxx_free_sleep", 0);
}

static bool static_enter()
{
    return ERRINJ_ENTER("cxx_static_enter");
}

inline void inline_lambda(int *counter)
{
    ERRINJ_LAMBDA("cxx_inline_lambda", c_lambda, counter);
}

template <class T> int tmpl_exception(T)
{
    return ERRINJ_EXCEPTION("cxx_tmpl_exception", -static_cast<int>(sizeof(T)));
}

template <class T> int tmpl_handler(T value)
{
    int v = static_cast<int>(value);
    return ERRINJ_HANDLER("cxx_tmpl_handler", c_handler, &v);
}

template <class T> struct box {
    bool enter() const { return ERRINJ_ENTER("cxx_class_tmpl_enter"); }
};

struct server {
    int wait() { return ERRINJ_WAIT_FOR_MESSAGE("cxx_member_wait", 0); }
    inline int out();
};

inline int server::out()
{
    return ERRINJ_EXCEPTION("cxx_member_out_exception", -7);
}

namespace outer {
int ns_exception()
{
    return ERRINJ_EXCEPTION("cxx_ns_exception", -8);
}
namespace inner {
inline bool nested_enter()
{
    return ERRINJ_ENTER("cxx_nested_ns_enter");
}
} // namespace inner
} // namespace outer

namespace {
int anon_exception()
{
    return ERRINJ_EXCEPTION("cxx_anon_ns_exception", -9);
}
} // namespace

#if __cplusplus >= 201703L
template <class T> int tmpl_hpp_lambda(T step)
{
    int total = 0, calls = 0;
    ERRINJ_LAMBDA("cxx_hpp_tmpl_lambda", [&total, &calls, step] { total += static_cast<int>(step), calls++; });
    return total;
}
#endif

#ifndef ERRINJ_DISABLE
static void check_catalogue()
{
    std::set<std::string> want, seen;
    for (const auto &e : expected)
        want.insert(std::string(e[0]) + " " + e[1]);
    errinj_list_points(
        [](const errinj_point *p, void *arg) {
            if (std::strstr(p->file, "sites.cpp") != nullptr)
                static_cast<std::set<std::string> *>(arg)->insert(std::string(p->name) + " " + errinj_type_name(p->type));
        },
        &seen);
    for (const auto &w : want) {
        if (seen.count(w) == 0) {
            std::fprintf(stderr, "not in the catalogue: %s\n", w.c_str());
            failures++;
        }
    }
    for (const auto &s : seen) {
        if (want.count(s) == 0) {
            std::fprintf(stderr, "unexpected in the catalogue: %s\n", s.c_str());
            failures++;
        }
    }
}
#endif

int main()
{
#ifndef ERRINJ_DISABLE
    errinj_set_log(nullptr, nullptr);
    check_catalogue();
    for (const auto &e : expected)
        CHECK(errinj_enable(e[0], false, nullptr) == 0);
#endif
    const char *const sleep_params[] = {"duration_ms", "0", nullptr};
    CHECK(errinj_enable("cxx_free_sleep", false, sleep_params) == 0);

    CHECK(free_exception() == (on ? -5 : 0));
    free_sleep();
    CHECK(static_enter() == on);
    int counter = 0;
    inline_lambda(&counter);
    CHECK(counter == (on ? 1 : 0));
    CHECK(tmpl_exception(1) == (on ? -static_cast<int>(sizeof(int)) : 0));
    CHECK(tmpl_exception('c') == (on ? -1 : 0));
    CHECK(tmpl_handler(3) == (on ? 3 : 0));
    CHECK(tmpl_handler(4.0) == (on ? 4 : 0));
    CHECK(box<int>().enter() == on);
    CHECK(box<char>().enter() == on);
    server s;
    CHECK(s.wait() == (on ? ERRINJ_ETIMEDOUT : 0));
    CHECK(s.out() == (on ? -7 : 0));
    CHECK(outer::ns_exception() == (on ? -8 : 0));
    CHECK(outer::inner::nested_enter() == on);
    CHECK(anon_exception() == (on ? -9 : 0));
    auto lambda = [] { return ERRINJ_ENTER("cxx_lambda_enter"); };
    CHECK(lambda() == on);
#if __cplusplus >= 201402L
    auto generic = [](auto x) { return ERRINJ_EXCEPTION("cxx_generic_lambda_exception", -static_cast<int>(sizeof(x))); };
    CHECK(generic(1) == (on ? -static_cast<int>(sizeof(int)) : 0));
    CHECK(generic(2.0) == (on ? -static_cast<int>(sizeof(double)) : 0));
#endif
#if __cplusplus >= 201703L
    {
        int a = 1, b = 2, sum = 0;
        ERRINJ_LAMBDA("cxx_hpp_lambda", [a, b, &sum] { int x = a, y = b; sum = x + y; });
        CHECK(sum == (on ? 3 : 0));
        int got = ERRINJ_HANDLER("cxx_hpp_handler", [a, b](errinj_handler *h) {
            return errinj_handler_name(h) != nullptr ? a + b : -1;
        });
        CHECK(got == (on ? 3 : 0));
        CHECK(ERRINJ_HANDLER("cxx_hpp_handler_noarg", [] { return true; }) == (on ? 1 : 0));
        bool thrown = false;
        try {
            ERRINJ_THROW("cxx_hpp_throw", std::runtime_error(std::string("injected, ") + "twice"));
        } catch (const std::runtime_error &e) {
            thrown = std::strcmp(e.what(), "injected, twice") == 0;
        }
        CHECK(thrown == on);
        CHECK(tmpl_hpp_lambda(2) == (on ? 2 : 0));
        CHECK(tmpl_hpp_lambda(3.0) == (on ? 3 : 0));
        int events = 0;
        {
            errinj::subscription sub([&events](const errinj_event &ev) {
                if (std::strcmp(ev.injection, "cxx_scoped") == 0)
                    events++;
            });
            errinj::scoped_enable scoped("cxx_scoped", {{"key", "value"}});
            CHECK(errinj_is_enabled("cxx_scoped") == on);
            CHECK(errinj_inject_enter("cxx_scoped") == on);
            CHECK(scoped.enters() == (on ? 1u : 0u));
        }
        CHECK(!errinj_is_enabled("cxx_scoped"));
        CHECK(events == (on ? 1 : 0));
        {
            /* A term: fires on every other evaluation. */
            errinj::scoped_enable term("cxx_scoped_term", std::string("1*off->1*on->1*off->1*on"));
            int fired = 0;
            for (int i = 0; i < 4; i++)
                fired += errinj_inject_enter("cxx_scoped_term") ? 1 : 0;
            CHECK(fired == (on ? 2 : 0));
        }
        bool refused = false;
        try {
            errinj::scoped_enable bad("cxx_scoped_bad", std::string("nonsense("));
        } catch (const std::system_error &e) {
            refused = e.code().value() == EINVAL && e.code().category() == errinj::category();
        }
        CHECK(refused == on);
    }
#endif
#ifndef ERRINJ_DISABLE
    /* Every site fired, each instantiation once. */
    for (const auto &e : expected) {
        uint64_t want = 1;
        const char *twice[] = {"cxx_tmpl_exception", "cxx_tmpl_handler", "cxx_class_tmpl_enter",
                               "cxx_generic_lambda_exception", "cxx_hpp_tmpl_lambda"};
        for (const char *t : twice)
            if (std::strcmp(t, e[0]) == 0)
                want = 2;
        if (errinj_enters(e[0]) != want) {
            std::fprintf(stderr, "%s fired %llu times, want %llu\n", e[0], (unsigned long long)errinj_enters(e[0]),
                         (unsigned long long)want);
            failures++;
        }
    }
#endif
    CHECK(expected[0][0] != nullptr);
    std::printf("%s: %s, C++%ld, %s\n", failures ? "FAIL" : "ok",
#ifdef __clang__
                "clang++",
#else
                "g++",
#endif
                __cplusplus / 100 % 100, on ? "points on" : "ERRINJ_DISABLE");
    return failures ? 1 : 0;
}
