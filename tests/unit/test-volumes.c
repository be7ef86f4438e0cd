/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/resource.h>

#include "strutil.h"
#include "tests.h"
#include "volumes.h"

static void test_crypttab(void) {
        static const char text[] =
                "# comment\n"
                "\n"
                "luks-root UUID=1111-aaaa none luks,discard\n"
                "  data\t/dev/vdb2\t/etc/key\tluks,x-unlockd-reseal=no\n"
                "swap /dev/vdb3 /dev/urandom swap,cipher=aes-xts-plain64\n"
                "later UUID=2222 none luks,noauto\n"
                "notours PARTUUID=3333 none x-unlockd=no\n"
                "bare LABEL=bare\n"
                "broken\n";
        VolumeSpec *s = NULL;
        size_t n = 0;

        ASSERT_EQ(crypttab_parse(text, &s, &n), 0);
        ASSERT_EQ(n, 3);
        ASSERT_STREQ(s[0].name, "luks-root");
        ASSERT_STREQ(s[0].device, "UUID=1111-aaaa");
        ASSERT(s[0].reseal);
        ASSERT_STREQ(s[1].name, "data");
        ASSERT_STREQ(s[1].device, "/dev/vdb2");
        ASSERT(!s[1].reseal);
        ASSERT_STREQ(s[2].device, "LABEL=bare");
        volume_specs_free(s, n);
}

static void test_parse_unsigned(void) {
        unsigned v = 7;

        ASSERT_EQ(parse_unsigned("0", 10, &v), 0);
        ASSERT_EQ(v, 0);
        ASSERT_EQ(parse_unsigned("120", 86400, &v), 0);
        ASSERT_EQ(v, 120);
        ASSERT_EQ(parse_unsigned("86400", 86400, &v), 0);
        ASSERT_EQ(v, 86400);
        v = 7;
        ASSERT_EQ(parse_unsigned("86401", 86400, &v), -EINVAL);
        ASSERT_EQ(parse_unsigned("-1", 86400, &v), -EINVAL);
        ASSERT_EQ(parse_unsigned("+1", 86400, &v), -EINVAL);
        ASSERT_EQ(parse_unsigned(" 1", 86400, &v), -EINVAL);
        ASSERT_EQ(parse_unsigned("1s", 86400, &v), -EINVAL);
        ASSERT_EQ(parse_unsigned("", 86400, &v), -EINVAL);
        ASSERT_EQ(parse_unsigned(NULL, 86400, &v), -EINVAL);
        ASSERT_EQ(parse_unsigned("99999999999999999999999", 4294967295u, &v), -EINVAL);
        ASSERT_EQ(v, 7);
}

static void test_cmdline_bool(void) {
        setenv("UNLOCKD_CMDLINE", "quiet rd.unlockd.reseal=0 rd.luks=1 rd.unlockd", 1);
        ASSERT(!kernel_cmdline_bool("rd.unlockd.reseal", true));
        ASSERT(kernel_cmdline_bool("rd.luks", false));
        ASSERT(kernel_cmdline_bool("rd.unlockd", false));
        ASSERT(kernel_cmdline_bool("absent", true));
        ASSERT(!kernel_cmdline_bool("absent", false));
        setenv("UNLOCKD_CMDLINE", "rd.unlockd.reseal=no rd.unlockd.reseal=yes", 1);
        ASSERT(kernel_cmdline_bool("rd.unlockd.reseal", false)); /* the last wins */
}

static void test_collect_from_cmdline(void) {
        char dir[] = "/tmp/unlockd-vol.XXXXXX", tab[64];
        VolumeSpec *s = NULL;
        size_t n = 0;
        FILE *f;

        ASSERT(mkdtemp(dir));
        snprintf(tab, sizeof(tab), "%s/crypttab", dir);
        f = fopen(tab, "w");
        ASSERT(f);
        fprintf(f, "named UUID=%s/dev1 none luks\nother %s/dev2 none luks\n", dir, dir);
        fclose(f);
        /* Absolute paths stand in for devices: they exist. */
        snprintf(tab + strlen(dir), sizeof(tab) - strlen(dir), "/dev2");
        f = fopen(tab, "w");
        ASSERT(f);
        fclose(f);
        snprintf(tab, sizeof(tab), "%s/crypttab", dir);
        setenv("UNLOCKD_CRYPTTAB", tab, 1);

        /* No rd.luks.uuid: every crypttab entry (the UUID= one is not found
         * quickly and is skipped). */
        setenv("UNLOCKD_CMDLINE", "rd.unlockd.timeout=0", 1);
        ASSERT_EQ(volumes_collect(NULL, 0, NULL, NULL, &s, &n), 0);
        ASSERT_EQ(n, 1);
        ASSERT_STREQ(s[0].name, "other");
        volume_specs_free(s, n);

        /* rd.luks.crypttab=off: crypttab is ignored ("off" is as good as "no"). */
        setenv("UNLOCKD_CMDLINE", "rd.luks.crypttab=off rd.unlockd.timeout=0", 1);
        ASSERT_EQ(volumes_collect(NULL, 0, NULL, NULL, &s, &n), 0);
        ASSERT_EQ(n, 0);

        /* rd.unlockd=0: nothing at all. */
        setenv("UNLOCKD_CMDLINE", "rd.unlockd=0", 1);
        ASSERT_EQ(volumes_collect(NULL, 0, NULL, NULL, &s, &n), 0);
        ASSERT_EQ(n, 0);

        /* Command-line devices win. */
        char *devs[] = { (char *) "/dev/one", (char *) "/dev/two" };
        ASSERT_EQ(volumes_collect(devs, 2, NULL, NULL, &s, &n), 0);
        ASSERT_EQ(n, 2);
        ASSERT_STREQ(s[1].device, "/dev/two");
        ASSERT(s[1].name == NULL);
        volume_specs_free(s, n);

        snprintf(tab, sizeof(tab), "%s/crypttab", dir);
        unlink(tab);
        snprintf(tab, sizeof(tab), "%s/dev2", dir);
        unlink(tab);
        rmdir(dir);
}

static unsigned alive_calls;

static void count_alive(void *userdata) {
        alive_calls++;
}

static long long cpu_usec(const struct rusage *u) {
        return (long long) (u->ru_utime.tv_sec + u->ru_stime.tv_sec) * 1000000 + u->ru_utime.tv_usec + u->ru_stime.tv_usec;
}

static void test_wait_for_path(void) {
        struct rusage before, after;
        char dir[] = "/tmp/unlockd-wait.XXXXXX", path[64];
        pid_t pid;

        ASSERT(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/sub/dev", dir);
        ASSERT_EQ(wait_for_path(path, 100000, NULL), -ETIMEDOUT);
        /* Signs of life while waiting: at once, then every WAIT_ALIVE_USEC,
         * not at every inotify event (the parent directory here sees many:
         * a 1.5 s wait gives exactly one). */
        alive_calls = 0;
        if (fork() == 0) {
                for (int i = 0; i < 50; i++) {
                        char noise[64];
                        snprintf(noise, sizeof(noise), "%s/noise%d", dir, i);
                        fclose(fopen(noise, "w"));
                        unlink(noise);
                        usleep(10000);
                }
                _exit(0);
        }
        getrusage(RUSAGE_SELF, &before);
        ASSERT_EQ(wait_for_path(path, 1500000, count_alive), -ETIMEDOUT);
        getrusage(RUSAGE_SELF, &after);
        wait(NULL);
        ASSERT_EQ(alive_calls, 1);
        /* Waiting is sleeping: 50 events must not make it spin. */
        ASSERT(cpu_usec(&after) - cpu_usec(&before) < 300000);
        pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
                char sub[64];
                usleep(100000);
                snprintf(sub, sizeof(sub), "%s/sub", dir);
                mkdir(sub, 0755);
                usleep(50000);
                fclose(fopen(path, "w"));
                _exit(0);
        }
        ASSERT_EQ(wait_for_path(path, 5000000, NULL), 0);
        waitpid(pid, NULL, 0);
        unlink(path);
        snprintf(path, sizeof(path), "%s/sub", dir);
        rmdir(path);
        rmdir(dir);
}

int main(void) {
        TEST(test_crypttab);
        TEST(test_parse_unsigned);
        TEST(test_cmdline_bool);
        TEST(test_collect_from_cmdline);
        TEST(test_wait_for_path);
        return 0;
}
