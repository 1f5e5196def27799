/* sites_c2.c - the second translation unit of the C test: the external definition of the C99
 * inline function and a point of its own, so both files' catalogue entries must survive. */
#include "sites_c.h"

extern int c99_inline_exception(void);

int c2_exception(void);

int c2_exception(void)
{
    return ERRINJ_EXCEPTION("c_second_tu_exception", -4) + c99_inline_exception();
}
