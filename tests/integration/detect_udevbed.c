/* SPDX-License-Identifier: Apache-2.0 */
/*
 * detect_udevbed.c - owns a umockdev testbed for the detect_* tests and plugs fake USB
 * devices in and out on command.
 *
 *   detect_udevbed CTL_FIFO
 *
 * Run it with LD_PRELOAD=libumockdev-preload.so.0 too (umockdev checks parent devices through
 * the redirected /sys). Prints "UMOCKDEV_DIR=<dir>" once the testbed exists. Processes started
 * with that variable and LD_PRELOAD=libumockdev-preload.so.0 see the testbed's sysfs and get
 * its uevents on their libudev netlink monitors (the detect driver; pcscd in detect_pcsc.sh).
 * Commands, one per line on CTL_FIFO (opened read-write, so writers may come and go):
 *
 *   add NAME VID PID CLASS   a usb_device NAME (e.g. 1-1) with one interface NAME:1.0 of
 *                            class CLASS; VID, PID and CLASS in hex (076b 3021 0b)
 *   remove NAME              remove events for the interface and the device, then delete them
 *
 * Each command answers "done: add NAME" / "done: remove NAME" or "error: ..." on stdout,
 * after the uevents have been sent. SIGTERM/SIGINT remove the testbed and exit 0.
 */
#include <umockdev.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define MAX_DEVS 16

struct fake_dev {
    char name[32];
    gchar *dev;  /* sysfs path of the usb_device */
    gchar *intf; /* sysfs path of its interface */
};

static struct fake_dev devs[MAX_DEVS];
static unsigned devnum = 1;

static struct fake_dev *find_dev(const char *name)
{
    size_t i;

    for (i = 0; i < MAX_DEVS; i++)
        if (devs[i].dev && strcmp(devs[i].name, name) == 0)
            return &devs[i];
    return NULL;
}

static bool hex_ok(const char *s, size_t maxlen)
{
    size_t n = strlen(s);

    return n > 0 && n <= maxlen && strspn(s, "0123456789abcdefABCDEF") == n;
}

/* "add NAME VID PID CLASS": usb_device + usb_interface, each with the properties udevd sets. */
static void cmd_add(UMockdevTestbed *tb, const char *name, const char *vid, const char *pid,
                    const char *cls)
{
    struct fake_dev *f = NULL;
    char product[32], iface[16], ids[16], devname[32], busnum[8], devnumstr[8], iname[48];
    unsigned long v, p, c;
    size_t i;

    if (strlen(name) >= sizeof(f->name) || find_dev(name) || !hex_ok(vid, 4) || !hex_ok(pid, 4) ||
        !hex_ok(cls, 2)) {
        printf("error: bad add command or duplicate name '%s'\n", name);
        return;
    }
    for (i = 0; i < MAX_DEVS && !f; i++)
        if (!devs[i].dev)
            f = &devs[i];
    if (!f) {
        printf("error: too many devices\n");
        return;
    }
    v = strtoul(vid, NULL, 16);
    p = strtoul(pid, NULL, 16);
    c = strtoul(cls, NULL, 16);
    snprintf(product, sizeof(product), "%lx/%lx/100", v, p);
    snprintf(iface, sizeof(iface), "%lu/0/0", c);
    snprintf(ids, sizeof(ids), ":%02lx0000:", c);
    snprintf(busnum, sizeof(busnum), "001");
    snprintf(devnumstr, sizeof(devnumstr), "%03u", ++devnum);
    snprintf(devname, sizeof(devname), "bus/usb/001/%03u", devnum);
    snprintf(iname, sizeof(iname), "%s:1.0", name);
    snprintf(f->name, sizeof(f->name), "%s", name);

    /* add_device sends an "add" uevent for each device by itself. */
    f->dev = umockdev_testbed_add_device(
        tb, "usb", name, NULL, "idVendor", vid, "idProduct", pid, "product", "PKIo fake token",
        "manufacturer", "pkio-agent tests", "serial", name, "busnum", "1", "devnum", devnumstr,
        "bDeviceClass", "00", "bNumInterfaces", " 1", NULL, "DEVTYPE", "usb_device", "PRODUCT",
        product, "TYPE", "0/0/0", "BUSNUM", busnum, "DEVNUM", devnumstr, "DEVNAME", devname,
        "ID_USB_INTERFACES", ids, NULL);
    if (!f->dev) {
        printf("error: add_device %s failed\n", name);
        return;
    }
    f->intf = umockdev_testbed_add_device(
        tb, "usb", iname, f->dev, "bInterfaceClass", cls, "bInterfaceSubClass", "00",
        "bInterfaceProtocol", "00", "bInterfaceNumber", "00", "bNumEndpoints", "03", NULL,
        "DEVTYPE", "usb_interface", "PRODUCT", product, "TYPE", "0/0/0", "INTERFACE", iface, NULL);
    if (!f->intf) {
        printf("error: add_device %s failed\n", iname);
        return;
    }
    printf("done: add %s\n", name);
}

static void cmd_remove(UMockdevTestbed *tb, const char *name)
{
    struct fake_dev *f = find_dev(name);

    if (!f) {
        printf("error: no device '%s'\n", name);
        return;
    }
    if (f->intf) {
        umockdev_testbed_uevent(tb, f->intf, "remove");
        umockdev_testbed_remove_device(tb, f->intf);
        g_free(f->intf);
    }
    umockdev_testbed_uevent(tb, f->dev, "remove");
    umockdev_testbed_remove_device(tb, f->dev);
    g_free(f->dev);
    memset(f, 0, sizeof(*f));
    printf("done: remove %s\n", name);
}

static void run_line(UMockdevTestbed *tb, char *line)
{
    char *argv[6], *save = NULL, *tok;
    int argc = 0;

    for (tok = strtok_r(line, " \t\r", &save); tok && argc < 6;
         tok = strtok_r(NULL, " \t\r", &save))
        argv[argc++] = tok;
    if (argc == 0)
        return;
    if (strcmp(argv[0], "add") == 0 && argc == 5)
        cmd_add(tb, argv[1], argv[2], argv[3], argv[4]);
    else if (strcmp(argv[0], "remove") == 0 && argc == 2)
        cmd_remove(tb, argv[1]);
    else
        printf("error: unknown command '%s'\n", argv[0]);
}

int main(int argc, char **argv)
{
    UMockdevTestbed *tb = NULL;
    gchar *root = NULL;
    char buf[1024];
    size_t used = 0;
    struct pollfd pfd[2];
    sigset_t mask;
    int fd = -1, sfd = -1, rc = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: detect_udevbed CTL_FIFO\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) == 0)
        sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sfd < 0) {
        fprintf(stderr, "error: signalfd: %s\n", strerror(errno));
        goto out;
    }
    fd = open(argv[1], O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "error: open %s: %s\n", argv[1], strerror(errno));
        goto out;
    }
    tb = umockdev_testbed_new();
    if (!tb) {
        fprintf(stderr, "error: umockdev_testbed_new failed\n");
        goto out;
    }
    root = umockdev_testbed_get_root_dir(tb);
    printf("UMOCKDEV_DIR=%s\n", root);

    pfd[0].fd = fd;
    pfd[0].events = POLLIN;
    pfd[1].fd = sfd;
    pfd[1].events = POLLIN;
    for (;;) {
        ssize_t n;
        char *nl;

        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "error: poll: %s\n", strerror(errno));
            goto out;
        }
        if (pfd[1].revents & POLLIN)
            break;
        if (!(pfd[0].revents & POLLIN))
            continue;
        n = read(fd, buf + used, sizeof(buf) - 1 - used);
        if (n <= 0)
            continue;
        used += (size_t)n;
        buf[used] = '\0';
        for (nl = strchr(buf, '\n'); nl; nl = strchr(buf, '\n')) {
            *nl = '\0';
            run_line(tb, buf);
            used -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, used + 1);
        }
        if (used == sizeof(buf) - 1) {
            printf("error: command line too long\n");
            used = 0;
        }
    }
    rc = 0;
out:
    for (size_t i = 0; i < MAX_DEVS; i++) {
        g_free(devs[i].dev);
        g_free(devs[i].intf);
    }
    g_free(root);
    if (tb)
        g_object_unref(tb); /* removes the testbed directory */
    if (fd >= 0)
        close(fd);
    if (sfd >= 0)
        close(sfd);
    return rc;
}
