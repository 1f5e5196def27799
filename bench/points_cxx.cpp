/*
 * points_cxx.cpp - the C++ rows of bench_points: a disabled point inside a function template and
 * inside an inline member function, each inlined into its loop exactly as the C macro row's point
 * is, so the three rows compare the cost of the site mechanisms alone (C: a record emitted by asm;
 * C++: a template-listed record).
 */
#include <errinj.h>

#include <cstdint>

#define KEEP(x) __asm__ volatile("" : "+r"(x))

namespace {

__attribute__((noinline)) void on_hit()
{
    __asm__ volatile("");
}

template <class T> inline bool templated_enter(T)
{
    return ERRINJ_ENTER("bench_cxx_template_off");
}

struct member {
    bool enter() { return ERRINJ_ENTER("bench_cxx_member_off"); }
};

} // namespace

extern "C" __attribute__((noinline)) void bench_loop_cxx_template_off(uint64_t n, void *arg)
{
    (void)arg;
    for (uint64_t i = 0; i < n; i++) {
        KEEP(i);
        if (templated_enter(i))
            on_hit();
    }
}

extern "C" __attribute__((noinline)) void bench_loop_cxx_member_off(uint64_t n, void *arg)
{
    (void)arg;
    member m;
    for (uint64_t i = 0; i < n; i++) {
        KEEP(i);
        if (m.enter())
            on_hit();
    }
}
