/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* VM test tool: fills the data segment of a LUKS2 image with a plaintext
 * filesystem image, encrypted as dm-crypt would (aes-xts-plain64, 512-byte
 * sectors, IV = sector number little-endian). The host has no
 * device-mapper; the VM's kernel reading the result proves it right.
 *
 *   luks-encrypt LUKS-IMAGE PASSPHRASE-FILE PLAIN-IMAGE
 */
#include <errno.h>
#include <fcntl.h>
#include <libcryptsetup.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECTOR 512
#define CHUNK (1024 * 1024)

int main(int argc, char *argv[]) {
        struct crypt_device *cd = NULL;
        char vk[64], pass[1024];
        size_t vk_size = sizeof(vk);
        uint64_t offset, sector = 0;
        unsigned char *in, *out;
        EVP_CIPHER_CTX *ctx;
        int pf, fd, src, r;
        ssize_t n;

        if (argc != 4) {
                fprintf(stderr, "usage: %s LUKS-IMAGE PASSPHRASE-FILE PLAIN-IMAGE\n", argv[0]);
                return 2;
        }
        pf = open(argv[2], O_RDONLY);
        if (pf < 0 || (n = read(pf, pass, sizeof(pass))) <= 0)
                return perror("passphrase"), 1;
        close(pf);

        if (crypt_init(&cd, argv[1]) < 0 || crypt_load(cd, CRYPT_LUKS2, NULL) < 0)
                return fprintf(stderr, "not a LUKS2 image\n"), 1;
        if (strcmp(crypt_get_cipher(cd), "aes") != 0 || strcmp(crypt_get_cipher_mode(cd), "xts-plain64") != 0 ||
            crypt_get_sector_size(cd) != SECTOR)
                return fprintf(stderr, "need aes-xts-plain64 with 512-byte sectors\n"), 1;
        r = crypt_volume_key_get(cd, CRYPT_ANY_SLOT, vk, &vk_size, pass, (size_t) n);
        if (r < 0 || vk_size != 64)
                return fprintf(stderr, "cannot get the volume key: %s\n", strerror(-r)), 1;
        offset = crypt_get_data_offset(cd) * 512;
        crypt_free(cd);

        src = open(argv[3], O_RDONLY);
        fd = open(argv[1], O_WRONLY);
        if (src < 0 || fd < 0 || lseek(fd, (off_t) offset, SEEK_SET) < 0)
                return perror("open"), 1;
        in = malloc(CHUNK);
        out = malloc(CHUNK);
        ctx = EVP_CIPHER_CTX_new();
        if (!in || !out || !ctx)
                return 1;

        while ((n = read(src, in, CHUNK)) > 0) {
                if (n % SECTOR)
                        memset(in + n, 0, SECTOR - n % SECTOR), n += SECTOR - n % SECTOR;
                for (ssize_t i = 0; i < n; i += SECTOR, sector++) {
                        unsigned char iv[16] = {};
                        int len;
                        for (int b = 0; b < 8; b++)
                                iv[b] = (unsigned char) (sector >> (8 * b));
                        if (EVP_EncryptInit_ex(ctx, EVP_aes_256_xts(), NULL, (unsigned char *) vk, iv) != 1 ||
                            EVP_EncryptUpdate(ctx, out + i, &len, in + i, SECTOR) != 1 || len != SECTOR)
                                return fprintf(stderr, "encryption failed\n"), 1;
                }
                if (write(fd, out, (size_t) n) != n)
                        return perror("write"), 1;
        }
        memset(vk, 0, sizeof(vk));
        memset(pass, 0, sizeof(pass));
        EVP_CIPHER_CTX_free(ctx);
        if (fsync(fd) < 0)
                return perror("fsync"), 1;
        printf("encrypted %llu sectors at offset %llu\n", (unsigned long long) sector, (unsigned long long) offset);
        return 0;
}
