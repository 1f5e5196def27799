/*
 * disabled_build.c - every call-site form with names that appear nowhere else. Built twice:
 * with -DERRINJ_DISABLE, check_no_names.cmake asserts the names are absent from the binary;
 * without it, that they are present (so the check can fail).
 */
#include <errinj.h>

#include <stdio.h>

static void lambda(void *arg)
{
    (void)arg;
}

static int handler(errinj_handler *h, void *arg)
{
    (void)h, (void)arg;
    return 1;
}

int main(void)
{
    int sum = 0;
    ERRINJ_SLEEP("zq_compiled_out_sleep", 1);
    sum += ERRINJ_EXCEPTION("zq_compiled_out_exception", -1);
    ERRINJ_LAMBDA("zq_compiled_out_lambda", lambda, NULL);
    sum += ERRINJ_HANDLER("zq_compiled_out_handler", handler, NULL);
    sum += ERRINJ_WAIT_FOR_MESSAGE("zq_compiled_out_wait", 0);
    sum += ERRINJ_ENTER("zq_compiled_out_enter");
    sum += errinj_inject_enter("zq_compiled_out_runtime");
    printf("%d\n", sum);
    return sum;
}
