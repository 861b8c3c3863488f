/*
 * The synthetic producer inside a real guest: finds the ivshmem-plain device
 * (PCI 1af4:1110), enables it, maps BAR2 through sysfs (resource2) and posts
 * test-pattern frames into it. Built static for a busybox initramfs:
 *   guest-producer WIDTH HEIGHT FPS SECONDS
 */
#include "../../../native/capture.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int read_hex(const char *dir, const char *name, unsigned *out) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    int ok = fscanf(f, "%x", out) == 1;
    fclose(f);
    return ok ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s WIDTH HEIGHT FPS SECONDS\n", argv[0]);
        return 2;
    }
    const char *base = "/sys/bus/pci/devices";
    DIR *d = opendir(base);
    if (!d) {
        perror("opendir");
        return 1;
    }
    char dev[512] = {0};
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", base, e->d_name);
        unsigned vendor = 0, device = 0;
        if (read_hex(dir, "vendor", &vendor) == 0 && read_hex(dir, "device", &device) == 0 && vendor == 0x1af4 &&
            device == 0x1110) {
            snprintf(dev, sizeof dev, "%s", dir);
            break;
        }
    }
    closedir(d);
    if (!dev[0]) {
        fprintf(stderr, "guest-producer: no ivshmem device\n");
        return 1;
    }
    char p[600];
    snprintf(p, sizeof p, "%s/enable", dev);
    int fd = open(p, O_WRONLY);
    if (fd >= 0) {
        if (write(fd, "1", 1) != 1) perror("enable");
        close(fd);
    }
    snprintf(p, sizeof p, "%s/resource2", dev);
    fd = open(p, O_RDWR | O_SYNC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror("resource2");
        return 1;
    }
    uint8_t *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    neuron_producer_config cfg = {.width = (uint32_t)atoi(argv[1]), .height = (uint32_t)atoi(argv[2]),
                                  .fps = (uint32_t)atoi(argv[3])};
    neuron_producer *prod = NULL;
    int rc = neuron_producer_start_mem(m, (uint64_t)st.st_size, &cfg, &prod);
    if (rc) {
        fprintf(stderr, "guest-producer: start failed (%d)\n", rc);
        return 1;
    }
    printf("guest-producer: posting %ux%u into %s (%lld bytes)\n", cfg.width, cfg.height, dev, (long long)st.st_size);
    fflush(stdout);
    sleep((unsigned)atoi(argv[4]));
    printf("guest-producer: %llu frames\n", (unsigned long long)neuron_producer_frames(prod));
    neuron_producer_stop(prod);
    return 0;
}
