/* user_lib.c - a library of the user's with a point, linked into consumer.c. */
#include <errinj.h>

int user_lib_call(void);

int user_lib_call(void)
{
    return ERRINJ_EXCEPTION("consumer_lib_point", -43);
}
