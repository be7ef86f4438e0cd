/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "notify.h"
#include "tests.h"

/* A datagram socket bound to name (a path, or "@…" for the abstract
 * namespace), as the service manager's notification socket is. */
static int listener(const char *name) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t n = strlen(name);
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        ASSERT(fd >= 0);
        memcpy(sa.sun_path, name, n);
        if (name[0] == '@')
                sa.sun_path[0] = 0;
        ASSERT(bind(fd, (struct sockaddr *) &sa, offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/')) == 0);
        return fd;
}

static void expect_message(int fd, const char *want) {
        char buf[256];
        ssize_t k = recv(fd, buf, sizeof(buf) - 1, 0);

        ASSERT(k >= 0);
        buf[k] = 0;
        ASSERT_STREQ(buf, want);
}

static void test_unset(void) {
        unsetenv("NOTIFY_SOCKET");
        ASSERT_EQ(notify("READY=1"), 0);
        setenv("NOTIFY_SOCKET", "", 1);
        ASSERT_EQ(notify("READY=1"), 0);
        ASSERT_EQ(notifyf("STATUS=%s", "x"), 0);
}

static void test_path(void) {
        char dir[] = "/tmp/unlockd-notify.XXXXXX", path[64];
        int fd;

        ASSERT(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/notify", dir);
        fd = listener(path);
        setenv("NOTIFY_SOCKET", path, 1);
        ASSERT_EQ(notify("EXTEND_TIMEOUT_USEC=60000000"), 1);
        expect_message(fd, "EXTEND_TIMEOUT_USEC=60000000");
        close(fd);
        unlink(path);
        rmdir(dir);
        /* Nobody listening any more: an error, not a crash or a hang. */
        ASSERT(notify("READY=1") < 0);
}

static void test_abstract(void) {
        char name[64];
        int fd;

        snprintf(name, sizeof(name), "@unlockd-notify-test-%d", (int) getpid());
        fd = listener(name);
        setenv("NOTIFY_SOCKET", name, 1);
        ASSERT_EQ(notify("STATUS=abstract"), 1);
        expect_message(fd, "STATUS=abstract");
        ASSERT_EQ(notifyf("STATUS=%d re-seal job%s done", 2, "s"), 1);
        expect_message(fd, "STATUS=2 re-seal jobs done");
        close(fd);
}

static void test_unsupported(void) {
        setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
        ASSERT_EQ(notify("READY=1"), -EAFNOSUPPORT);
        setenv("NOTIFY_SOCKET", "relative/path", 1);
        ASSERT_EQ(notify("READY=1"), -EAFNOSUPPORT);
}

int main(void) {
        TEST(test_unset);
        TEST(test_path);
        TEST(test_abstract);
        TEST(test_unsupported);
        return 0;
}
