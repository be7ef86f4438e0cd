/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
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

/* crypttab options that systemd-cryptsetup-generator reads the same way:
 * the last of noauto/auto wins, x-unlockd= takes any boolean. */
static void test_crypttab_option_values(void) {
        static const char text[] =
                "back UUID=1111 none luks,noauto,auto\n"
                "gone UUID=2222 none luks,auto,noauto\n"
                "off UUID=3333 none luks,x-unlockd=off\n"
                "on UUID=4444 none luks,x-unlockd=no,x-unlockd=yes,x-unlockd-reseal=0\n"
                "vera UUID=5555 none tcrypt-veracrypt\n";
        VolumeSpec *s = NULL;
        size_t n = 0;

        ASSERT_EQ(crypttab_parse(text, &s, &n), 0);
        ASSERT_EQ(n, 2);
        ASSERT_STREQ(s[0].name, "back");
        ASSERT(s[0].reseal);
        ASSERT_STREQ(s[1].name, "on");
        ASSERT(!s[1].reseal);
        volume_specs_free(s, n);
}

/* The volumes selection tests run where UUID= devices resolve as at boot:
 * in a mount namespace of their own with a tmpfs on /dev, in which
 * /dev/disk/by-uuid/U1 … U9 and /dev/vdx are regular files. */
#define U(i) "0b5e4a9c-1111-4222-8333-94445555000" #i

static int private_dev(void) {
        uid_t uid = getuid();
        gid_t gid = getgid();

        if (unshare(CLONE_NEWNS) < 0) {
                char map[64];
                int fd;

                if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
                        return -errno;
                fd = open("/proc/self/setgroups", O_WRONLY | O_CLOEXEC);
                if (fd >= 0) {
                        (void) !write(fd, "deny", 4);
                        close(fd);
                }
                snprintf(map, sizeof(map), "0 %u 1", (unsigned) uid);
                fd = open("/proc/self/uid_map", O_WRONLY | O_CLOEXEC);
                if (fd < 0 || write(fd, map, strlen(map)) < 0)
                        return -errno;
                close(fd);
                snprintf(map, sizeof(map), "0 %u 1", (unsigned) gid);
                fd = open("/proc/self/gid_map", O_WRONLY | O_CLOEXEC);
                if (fd < 0 || write(fd, map, strlen(map)) < 0)
                        return -errno;
                close(fd);
        }
        if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755") < 0 ||
            mkdir("/dev/disk", 0755) < 0 || mkdir("/dev/disk/by-uuid", 0755) < 0)
                return -errno;
        for (int i = 1; i <= 9; i++) {
                char path[128];

                snprintf(path, sizeof(path), "/dev/disk/by-uuid/0b5e4a9c-1111-4222-8333-94445555000%d", i);
                fclose(fopen(path, "w"));
        }
        fclose(fopen("/dev/vdx", "w"));
        return 0;
}

/* Runs f in a child with a private /dev; a skip when there is none to have. */
static void in_private_dev(void (*f)(const char *crypttab), const char *name) {
        char dir[] = "/tmp/unlockd-sel.XXXXXX", tab[64];
        int status;
        pid_t pid;

        ASSERT(mkdtemp(dir));
        snprintf(tab, sizeof(tab), "%s/crypttab", dir);
        pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
                int r = private_dev();
                if (r < 0) {
                        fprintf(stderr, "No private /dev (%s).\n", strerror(-r));
                        _exit(77);
                }
                f(tab);
                _exit(0);
        }
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        unlink(tab);
        rmdir(dir);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
                printf("skip - %s\n", name);
                return;
        }
        ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        printf("ok - %s\n", name);
}

#define TEST_PRIVATE_DEV(f) in_private_dev(f, #f)

static void collect(const char *crypttab, const char *crypttab_text, const char *cmdline,
                    VolumeSpec **s, size_t *n) {
        FILE *f = fopen(crypttab, "w");

        ASSERT(f);
        fputs(crypttab_text, f);
        fclose(f);
        setenv("UNLOCKD_CRYPTTAB", crypttab, 1);
        setenv("UNLOCKD_CMDLINE", cmdline, 1);
        ASSERT_EQ(volumes_collect(NULL, 0, NULL, NULL, s, n), 0);
}

/* rd.luks.name= names a volume that has a crypttab entry: the entry's
 * options apply (x-unlockd-reseal=no), and its name, as with
 * systemd-cryptsetup-generator, so that systemd-cryptsetup@NAME finds the
 * volume open. */
static void sel_name_keeps_crypttab_options(const char *tab) {
        VolumeSpec *s = NULL;
        size_t n = 0;

        collect(tab, "tabname UUID=" U(1) " none luks,x-unlockd-reseal=no\n",
                "rd.luks.name=" U(1) "=cmdname rd.unlockd.timeout=0", &s, &n);
        ASSERT_EQ(n, 1);
        ASSERT_STREQ(s[0].device, "/dev/disk/by-uuid/" U(1));
        ASSERT_STREQ(s[0].name, "tabname");
        ASSERT(!s[0].reseal);
        volume_specs_free(s, n);
}

/* rd.luks.uuid= names a volume whose crypttab entry says x-unlockd=no:
 * unlockd leaves it alone (systemd-cryptsetup asks for it). */
static void sel_uuid_x_unlockd_no(const char *tab) {
        VolumeSpec *s = NULL;
        size_t n = 0;

        collect(tab, "skipme UUID=" U(2) " none luks,x-unlockd=no\nother UUID=" U(3) " none luks\n",
                "rd.luks.uuid=" U(2) " rd.unlockd.timeout=0", &s, &n);
        ASSERT_EQ(n, 0);
}

/* Likewise for rd.unlockd.uuid=. */
static void sel_unlockd_uuid_x_unlockd_no(const char *tab) {
        VolumeSpec *s = NULL;
        size_t n = 0;

        collect(tab, "skipme UUID=" U(2) " none luks,x-unlockd=no\n",
                "rd.unlockd.uuid=luks-" U(2) " rd.unlockd.timeout=0", &s, &n);
        ASSERT_EQ(n, 0);
}

/* noauto in crypttab: not opened at boot, even when the kernel command
 * line names the volume (systemd-cryptsetup-generator does not pull it into
 * cryptsetup.target either). */
static void sel_uuid_noauto(const char *tab) {
        VolumeSpec *s = NULL;
        size_t n = 0;

        collect(tab, "later UUID=" U(4) " none luks,noauto\n",
                "rd.luks.uuid=luks-" U(4) " rd.unlockd.timeout=0", &s, &n);
        ASSERT_EQ(n, 0);
}

/* A crypttab entry is the volume's when its device is
 * /dev/disk/by-uuid/UUID, or its name luks-UUID, as for systemd. */
static void sel_entry_by_path_or_name(const char *tab) {
        VolumeSpec *s = NULL;
        size_t n = 0;

        collect(tab,
                "bypath /dev/disk/by-uuid/" U(5) " none luks,x-unlockd=no\n"
                "luks-" U(6) " /dev/vdx none luks,x-unlockd-reseal=no\n",
                "rd.luks.uuid=" U(5) " rd.luks.uuid=" U(6) " rd.unlockd.timeout=0", &s, &n);
        ASSERT_EQ(n, 1);
        ASSERT_STREQ(s[0].device, "/dev/vdx");
        ASSERT_STREQ(s[0].name, "luks-" U(6));
        ASSERT(!s[0].reseal);
        volume_specs_free(s, n);
}

/* rd.luks.crypttab=no: crypttab does not count at all, not even its
 * x-unlockd=no. */
static void sel_crypttab_no(const char *tab) {
        VolumeSpec *s = NULL;
        size_t n = 0;

        collect(tab, "skipme UUID=" U(2) " none luks,x-unlockd=no,noauto\n",
                "rd.luks.crypttab=no rd.luks.uuid=" U(2) " rd.unlockd.timeout=0", &s, &n);
        ASSERT_EQ(n, 1);
        ASSERT_STREQ(s[0].device, "/dev/disk/by-uuid/" U(2));
        ASSERT(s[0].name == NULL);
        ASSERT(s[0].reseal);
        volume_specs_free(s, n);
}

/* rd.luks.options=UUID=OPTS replaces the crypttab entry's options (here:
 * its noauto), without selecting the volume; rd.luks.options=OPTS applies
 * to volumes of the command line that have no entry. */
static void sel_luks_options(const char *tab) {
        VolumeSpec *s = NULL;
        size_t n = 0;

        collect(tab, "later UUID=" U(4) " none luks,noauto\nother UUID=" U(3) " none luks\n",
                "rd.luks.options=" U(4) "=discard,x-unlockd-reseal=no rd.unlockd.timeout=0", &s, &n);
        ASSERT_EQ(n, 2);
        ASSERT_STREQ(s[0].name, "later");
        ASSERT(!s[0].reseal);
        ASSERT_STREQ(s[1].name, "other");
        ASSERT(s[1].reseal);
        volume_specs_free(s, n);

        collect(tab, "",
                "rd.luks.uuid=" U(7) " rd.luks.options=x-unlockd-reseal=no rd.luks.uuid=" U(8)
                " rd.luks.options=" U(8) "=discard rd.unlockd.timeout=0", &s, &n);
        ASSERT_EQ(n, 2);
        ASSERT_STREQ(s[0].device, "/dev/disk/by-uuid/" U(7));
        ASSERT(!s[0].reseal);
        ASSERT_STREQ(s[1].device, "/dev/disk/by-uuid/" U(8));
        ASSERT(s[1].reseal);
        volume_specs_free(s, n);
}

/* rd.luks.uuid= and rd.luks.name= for the same volume: one volume, and
 * the (last) rd.luks.name= names it. */
static void sel_uuid_then_name(const char *tab) {
        VolumeSpec *s = NULL;
        size_t n = 0;

        collect(tab, "", "rd.luks.uuid=" U(9) " rd.luks.name=" U(9) "=first rd.luks.name=" U(9) "=root"
                " rd.unlockd.timeout=0", &s, &n);
        ASSERT_EQ(n, 1);
        ASSERT_STREQ(s[0].name, "root");
        volume_specs_free(s, n);
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
        TEST(test_crypttab_option_values);
        TEST_PRIVATE_DEV(sel_name_keeps_crypttab_options);
        TEST_PRIVATE_DEV(sel_uuid_x_unlockd_no);
        TEST_PRIVATE_DEV(sel_unlockd_uuid_x_unlockd_no);
        TEST_PRIVATE_DEV(sel_uuid_noauto);
        TEST_PRIVATE_DEV(sel_entry_by_path_or_name);
        TEST_PRIVATE_DEV(sel_crypttab_no);
        TEST_PRIVATE_DEV(sel_luks_options);
        TEST_PRIVATE_DEV(sel_uuid_then_name);
        TEST(test_wait_for_path);
        return 0;
}
