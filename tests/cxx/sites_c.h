/* sites_c.h - a C99 inline function with a point, included by both translation units of the C test. */
#include <errinj.h>

inline int c99_inline_exception(void)
{
    return ERRINJ_EXCEPTION("c_c99_inline_exception", -3);
}
