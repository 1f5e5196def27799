/*
 * consumer.c - what a user's program does with an installed errinj: a point of its own and one in
 * a library of its own (user_lib.c, linked as a static archive or a shared library); both must be
 * in the catalogue before they run, and both must fire once enabled. Prints "consumer ok".
 */
#include <errinj.h>

#include <stdio.h>
#include <string.h>

int user_lib_call(void);

struct seen {
    int main_point, lib_point;
};

static void collect(const errinj_point *p, void *arg)
{
    struct seen *s = arg;
    if (strcmp(p->name, "consumer_main_point") == 0 && strstr(p->file, "consumer.c") != NULL)
        s->main_point++;
    if (strcmp(p->name, "consumer_lib_point") == 0 && strstr(p->file, "user_lib.c") != NULL)
        s->lib_point++;
}

int main(void)
{
    errinj_set_log(NULL, NULL);
    struct seen s = {0, 0};
    errinj_list_points(collect, &s);
    if (s.main_point != 1 || s.lib_point != 1) {
        fprintf(stderr, "catalogue: consumer_main_point listed %d times, consumer_lib_point %d times\n",
                s.main_point, s.lib_point);
        return 1;
    }
    if (errinj_enable("consumer_main_point", false, NULL) != 0 || errinj_enable("consumer_lib_point", false, NULL) != 0)
        return 1;
    int main_rc = ERRINJ_EXCEPTION("consumer_main_point", -42);
    int lib_rc = user_lib_call();
    if (main_rc != -42 || lib_rc != -43) {
        fprintf(stderr, "fired: main %d (want -42), lib %d (want -43)\n", main_rc, lib_rc);
        return 1;
    }
    printf("consumer ok\n");
    return 0;
}
