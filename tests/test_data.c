// test_data.c: SHA-256 vectors, the IDX reader on synthetic files (raw and gzip), bad input
// (each in a forked child whose stderr is captured), the real MNIST files when present, the
// data directory resolution, and the epoch sampler.
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "common.h"
#include "data.h"
#include "rng.h"
#include "sha256.h"
#include "testutil.h"

// data_resolve_dir's last fallback (src/data.c); where the tests find MNIST: t_mnist_dir()
#define SHARED_DIR "../shared/data/mnist"

#define TRAIN_IMG "train-images-idx3-ubyte"
#define TRAIN_LAB "train-labels-idx1-ubyte"
#define TEST_IMG "t10k-images-idx3-ubyte"
#define TEST_LAB "t10k-labels-idx1-ubyte"
// SHA-256 of Fashion-MNIST's uncompressed train-images-idx3-ubyte (zcat | sha256sum of Debian's
// dataset-fashion-mnist; its MD5 f4a8712d... is the published one of the upstream file)
#define FASHION_TRAIN_IMG_SHA256 "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"

// Where the tests find Fashion-MNIST: $HYPERTRAIN_TEST_FASHION, else Debian's directory.
static const char *t_fashion_dir(void) {
    const char *d = getenv("HYPERTRAIN_TEST_FASHION");
    return d && *d ? d : DATA_FASHION_MNIST_DIR;
}

// ---------------------------------------------------------------------------------------------
// SHA-256

static void test_sha256(TestState *ts) {
    printf("SHA-256 (FIPS 180-2 vectors)\n");
    char hex[65];
    sha256_hex("abc", 3, hex);
    T_CHECK(ts, !strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            "\"abc\" -> %s", hex);
    sha256_hex("", 0, hex);
    T_CHECK(ts, !strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            "\"\" -> %s", hex);
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(m448, strlen(m448), hex);
    T_CHECK(ts, !strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
            "448-bit message -> %s", hex);

    // 1,000,000 x 'a', fed in uneven pieces to exercise the partial-block path.
    Sha256 s;
    uint8_t d[32];
    char buf[1000];
    memset(buf, 'a', sizeof buf);
    sha256_init(&s);
    size_t left = 1000000, piece = 1;
    while (left) {
        size_t k = piece < left ? piece : left;
        sha256_update(&s, buf, k);
        left -= k;
        piece = piece * 7 % 997 + 1;
    }
    sha256_final(&s, d);
    sha256_to_hex(d, hex);
    T_CHECK(ts, !strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
            "1,000,000 x 'a' (streamed) -> %s", hex);

    // Lengths around the padding boundary (55, 56, 63, 64 bytes): streamed == one-shot.
    int ok = 1;
    for (size_t n = 50; n <= 130; n++) {
        char one[65];
        sha256_hex(buf, n, one);
        sha256_init(&s);
        for (size_t i = 0; i < n; i++) sha256_update(&s, buf + i, 1);
        sha256_final(&s, d);
        sha256_to_hex(d, hex);
        ok &= !strcmp(one, hex);
    }
    T_CHECK(ts, ok, "byte-by-byte == one-shot for lengths 50..130");
}

// ---------------------------------------------------------------------------------------------
// Synthetic IDX files

static char tmp_root[64];

static uint8_t pixel(int seed, int i, int k) { return (uint8_t)((i * 7 + k * 3 + seed) % 256); }
static uint8_t label_of(int seed, int i) { return (uint8_t)((i * 3 + seed) % 10); }

// Builds an IDX file in memory: magic, dims, then the pixel / label pattern.
static uint8_t *make_idx(int magic, int n, int side, int seed, size_t *len) {
    int nd = magic & 0xff;
    size_t per = nd == 3 ? (size_t)side * side : 1;
    *len = 4 + 4 * (size_t)nd + (size_t)n * per;
    uint8_t *b = XMALLOC(*len), *p = b;
    uint32_t hdr[4] = {(uint32_t)magic, (uint32_t)n, (uint32_t)side, (uint32_t)side};
    for (int d = 0; d <= nd; d++)
        for (int k = 0; k < 4; k++) *p++ = (uint8_t)(hdr[d] >> (24 - 8 * k));
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < per; k++)
            *p++ = nd == 3 ? pixel(seed, i, (int)k) : label_of(seed, i);
    return b;
}

static void write_raw(const char *path, const uint8_t *b, size_t len) {
    FILE *f = XFOPEN(path, "wb");
    HT_CHECK(fwrite(b, 1, len, f) == len, "short write to %s", path);
    XFCLOSE(f, path);
}

static void write_gz(const char *path, const uint8_t *b, size_t len) {
    gzFile f = gzopen(path, "wb");
    HT_CHECK(f, "cannot create %s", path);
    HT_CHECK(gzwrite(f, b, (unsigned)len) == (int)len, "gzwrite %s", path);
    HT_CHECK(gzclose(f) == Z_OK, "gzclose %s", path);
}

static char *join(const char *dir, const char *name, const char *ext) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s%s", dir, name, ext);
    return p;
}

static char *make_dir(const char *name) {
    char *p = join(tmp_root, name, "");
    HT_CHECK(mkdir(p, 0700) == 0, "mkdir %s", p);
    return p;
}

// Writes one IDX file as dir/name (gz = 0) or dir/name.gz (gz = 1).
static void put(const char *dir, const char *name, int gz, int magic, int n, int side, int seed) {
    size_t len;
    uint8_t *b = make_idx(magic, n, side, seed, &len);
    if (gz) write_gz(join(dir, name, ".gz"), b, len);
    else write_raw(join(dir, name, ""), b, len);
    free(b);
}

// A complete synthetic data set: 70 training and 20 test images of 28 x 28.
static void put_all(const char *dir, int gz) {
    put(dir, TRAIN_IMG, gz, 2051, 70, 28, 1);
    put(dir, TRAIN_LAB, gz, 2049, 70, 0, 1);
    put(dir, TEST_IMG, gz, 2051, 20, 28, 2);
    put(dir, TEST_LAB, gz, 2049, 20, 0, 2);
}

static int dataset_matches(const Dataset *d, int n, int first, int seed) {
    if (d->n != n || d->h != 28 || d->w != 28) return 0;
    for (int i = 0; i < n; i++) {
        if (d->labels[i] != label_of(seed, first + i)) return 0;
        for (int k = 0; k < 784; k++)
            if (d->images[(size_t)i * 784 + k] != (float)pixel(seed, first + i, k) / 255.0f) return 0;
    }
    return 1;
}

static void test_synthetic(TestState *ts) {
    printf("synthetic IDX files (70 train, 20 test)\n");
    const char *kinds[2] = {"raw", "gzip"};
    for (int gz = 0; gz < 2; gz++) {
        char *dir = make_dir(kinds[gz]);
        put_all(dir, gz);
        Mnist m;
        mnist_load(&m, dir, 50, 20, 0);
        T_CHECK(ts, dataset_matches(&m.val, 20, 0, 1), "%s: validation = first 20 images", kinds[gz]);
        T_CHECK(ts, dataset_matches(&m.train, 50, 20, 1), "%s: train = images 20..69", kinds[gz]);
        T_CHECK(ts, dataset_matches(&m.test, 20, 0, 2), "%s: test = all 20 t10k images", kinds[gz]);
        mnist_free(&m);
        mnist_load(&m, dir, 10, 5, 0);
        T_CHECK(ts, dataset_matches(&m.val, 5, 0, 1) && dataset_matches(&m.train, 10, 5, 1),
                "%s: smaller split (val 5, train 10) takes images 0..4 and 5..14", kinds[gz]);
        mnist_free(&m);
    }

    // idx_read's hash is that of the uncompressed contents, for .gz and raw alike.
    size_t len;
    uint8_t *b = make_idx(2051, 70, 28, 1, &len);
    char want[65], got_raw[65], got_gz[65];
    sha256_hex(b, len, want);
    int dims[3], nd;
    uint8_t *p = idx_read(join(tmp_root, "raw/", TRAIN_IMG), 2051, dims, &nd, got_raw);
    T_CHECK(ts, nd == 3 && dims[0] == 70 && dims[1] == 28 && dims[2] == 28 &&
                !memcmp(p, b + 16, len - 16), "idx_read raw: dims 70 x 28 x 28, payload intact");
    free(p);
    p = idx_read(join(tmp_root, "gzip/", TRAIN_IMG ".gz"), 2051, dims, &nd, got_gz);
    free(p);
    T_CHECK(ts, !strcmp(want, got_raw) && !strcmp(want, got_gz),
            "idx_read SHA-256 of uncompressed contents: raw %.16s..., gz %.16s..., want %.16s...",
            got_raw, got_gz, want);
    free(b);

    // NAME.gz is preferred over NAME: a valid .gz next to a raw file of different content.
    char *dir = make_dir("both");
    put_all(dir, 1);
    put(dir, TRAIN_IMG, 0, 2051, 70, 28, 9);
    Mnist m;
    mnist_load(&m, dir, 50, 20, 0);
    T_CHECK(ts, dataset_matches(&m.train, 50, 20, 1), "NAME.gz is read in preference to NAME");
    mnist_free(&m);
}

// ---------------------------------------------------------------------------------------------
// Bad input: each case runs mnist_load in a child and checks its exit status and message.

typedef struct {
    const char *dir;
    int n_train, n_val, verify;
} LoadArgs;

// Loads data set `id` (DataSetId).
static void expect_fatal_id(TestState *ts, const char *what, int id, LoadArgs a, const char *phrase1,
                            const char *phrase2) {
    int fd[2];
    HT_CHECK(pipe(fd) == 0, "pipe");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    HT_CHECK(pid >= 0, "fork");
    if (pid == 0) {
        t_child_no_leak_check();
        close(fd[0]);
        dup2(fd[1], 2);
        Mnist m;
        data_load(&m, id, a.dir, a.n_train, a.n_val, a.verify);
        _exit(0);  // loaded without error
    }
    close(fd[1]);
    char msg[4096];
    size_t len = 0;
    ssize_t r;
    while ((r = read(fd[0], msg + len, sizeof msg - 1 - len)) > 0) len += (size_t)r;
    msg[len] = '\0';
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    int failed = WIFEXITED(status) ? WEXITSTATUS(status) != 0 : 1;
    int has = strstr(msg, phrase1) && (!phrase2 || strstr(msg, phrase2));
    char *nl = strchr(msg, '\n');
    if (nl) *nl = '\0';
    T_CHECK(ts, failed && has, "%s: exit %s, message has '%s'%s%s%s: %s", what,
            failed ? "non-zero" : "0", phrase1, phrase2 ? " and '" : "", phrase2 ? phrase2 : "",
            phrase2 ? "'" : "", len ? msg : "(no message)");
}

// Fashion-MNIST's checks on synthetic files: they need no data.
static void test_bad_input_fashion(TestState *ts) {
    printf("bad input, data set fashion-mnist (each in a forked child)\n");
    char *d = join(tmp_root, "no-such-fashion-dir", "");
    expect_fatal_id(ts, "fashion: missing directory", DATA_FASHION_MNIST, (LoadArgs){d, 50, 20, 0},
                 "no-such-fashion-dir' does not exist", "apt-get install dataset-fashion-mnist puts Fashion-MNIST in");
    d = make_dir("fashion-missing-file");
    put_all(d, 0);
    unlink(join(d, TRAIN_LAB, ""));
    expect_fatal_id(ts, "fashion: missing file", DATA_FASHION_MNIST, (LoadArgs){d, 50, 20, 0},
                 "nor '" TRAIN_LAB "'", "dataset-fashion-mnist puts Fashion-MNIST in");
    d = make_dir("fashion-checksum");
    put_all(d, 1);
    expect_fatal_id(ts, "fashion: wrong checksum names its own table", DATA_FASHION_MNIST, (LoadArgs){d, 50, 20, 1},
                 "expected " FASHION_TRAIN_IMG_SHA256 " (the original Fashion-MNIST " TRAIN_IMG ")",
                 "data.verify=false");
    // the same files load unverified as either data set
    Mnist m;
    data_load(&m, DATA_FASHION_MNIST, d, 50, 20, 0);
    T_CHECK(ts, m.train.n == 50 && m.val.n == 20 && m.test.n == 20, "fashion, verify off: synthetic files load "
            "(%d/%d/%d)", m.train.n, m.val.n, m.test.n);
    mnist_free(&m);
}

// A real file of one data set loaded as the other: the checksum error names the right data set.
static void test_swapped(TestState *ts, const char *dir, int actual, int claimed) {
    char *d = make_dir(actual == DATA_MNIST ? "swapped-mnist" : "swapped-fashion");
    const char *names[2] = {TRAIN_IMG, TRAIN_LAB};
    for (int i = 0; i < 2; i++) {
        char cwd[1024], src[2200];
        HT_CHECK(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
        const char *base = dir[0] == '/' ? "" : cwd;  // the link needs an absolute target
        snprintf(src, sizeof src, "%s%s%s/%s.gz", base, *base ? "/" : "", dir, names[i]);
        if (access(src, F_OK) != 0) snprintf(src, sizeof src, "%s%s%s/%s", base, *base ? "/" : "", dir, names[i]);
        char *dst = join(d, names[i], strstr(src, ".gz") ? ".gz" : "");
        HT_CHECK(symlink(src, dst) == 0, "symlink %s -> %s", dst, src);
    }
    char hint[128];
    snprintf(hint, sizeof hint, "It is %s's " TRAIN_IMG ": set data.dataset=%s", data_set_title(actual),
             data_set_name(actual));
    char what[96];
    snprintf(what, sizeof what, "%s's files loaded as %s", data_set_title(actual), data_set_title(claimed));
    expect_fatal_id(ts, what, claimed, (LoadArgs){d, 50, 20, 1}, "SHA-256", hint);
}

static void expect_fatal(TestState *ts, const char *what, LoadArgs a, const char *phrase1,
                         const char *phrase2) {
    expect_fatal_id(ts, what, DATA_MNIST, a, phrase1, phrase2);
}

static void cut_file(const char *path, long keep) {
    HT_CHECK(truncate(path, keep) == 0, "truncate %s", path);
}

static long file_size(const char *path) {
    struct stat st;
    HT_CHECK(stat(path, &st) == 0, "stat %s", path);
    return (long)st.st_size;
}

static void test_bad_input(TestState *ts) {
    printf("bad input (each in a forked child)\n");
    char *d;

    d = join(tmp_root, "no-such-dir", "");
    expect_fatal(ts, "missing directory", (LoadArgs){d, 50, 20, 0}, "does not exist",
                 "fetch-mnist.sh");

    d = make_dir("missing-file");
    put_all(d, 0);
    unlink(join(d, TEST_LAB, ""));
    expect_fatal(ts, "missing file", (LoadArgs){d, 50, 20, 0}, TEST_LAB, "neither");

    d = make_dir("checksum");
    put_all(d, 1);
    expect_fatal(ts, "wrong checksum (verify=1)", (LoadArgs){d, 50, 20, 1},
                 "train-images-idx3-ubyte.gz': SHA-256", "data.verify=false");

    d = make_dir("truncated-gz");
    put_all(d, 1);
    char *p = join(d, TRAIN_IMG, ".gz");
    cut_file(p, file_size(p) / 2);
    expect_fatal(ts, "truncated .gz (half)", (LoadArgs){d, 50, 20, 0},
                 "truncated or corrupt gzip file", TRAIN_IMG);

    d = make_dir("truncated-gz-trailer");
    put_all(d, 1);
    p = join(d, TEST_LAB, ".gz");
    cut_file(p, file_size(p) - 4);  // deflate data complete, gzip length field missing
    expect_fatal(ts, "truncated .gz (inside the 8-byte trailer)", (LoadArgs){d, 50, 20, 0},
                 "truncated or corrupt gzip file", TEST_LAB);

    d = make_dir("corrupt-gz");
    put_all(d, 1);
    p = join(d, TRAIN_LAB, ".gz");
    {   // flip one bit of the CRC-32 in the trailer: the data inflates but fails the check
        long n = file_size(p);
        FILE *f = XFOPEN(p, "r+b");
        fseek(f, n - 8, SEEK_SET);
        int c = fgetc(f);
        fseek(f, n - 8, SEEK_SET);
        fputc(c ^ 1, f);
        XFCLOSE(f, p);
    }
    expect_fatal(ts, "corrupt .gz (bad CRC)", (LoadArgs){d, 50, 20, 0},
                 "truncated or corrupt gzip file", TRAIN_LAB);

    d = make_dir("magic");
    put_all(d, 0);
    put(d, TRAIN_IMG, 0, 2049, 70, 0, 1);  // a labels file where the images belong
    expect_fatal(ts, "wrong IDX magic", (LoadArgs){d, 50, 20, 0}, "wrong IDX magic 0x00000801",
                 "expected 2051 (images)");

    d = make_dir("short");
    put_all(d, 0);
    p = join(d, TEST_IMG, "");
    cut_file(p, file_size(p) - 100);
    expect_fatal(ts, "data shorter than header", (LoadArgs){d, 50, 20, 0}, "data length",
                 "t10k-images-idx3-ubyte': data length");

    d = make_dir("short-gz");
    put_all(d, 0);
    {   // a valid gzip stream whose contents are one image short
        size_t len;
        uint8_t *b = make_idx(2051, 70, 28, 1, &len);
        unlink(join(d, TRAIN_IMG, ""));
        write_gz(join(d, TRAIN_IMG, ".gz"), b, len - 784);
        free(b);
    }
    expect_fatal(ts, "valid .gz with data shorter than header", (LoadArgs){d, 50, 20, 0},
                 "train-images-idx3-ubyte.gz': data length", "truncated");

    d = make_dir("trailing");
    put_all(d, 0);
    {
        FILE *f = XFOPEN(join(d, TRAIN_LAB, ""), "ab");
        fputs("xyz", f);
        XFCLOSE(f, "trailing");
    }
    expect_fatal(ts, "trailing bytes", (LoadArgs){d, 50, 20, 0}, "train-labels-idx1-ubyte': data length",
                 "3 trailing bytes");

    d = make_dir("dims");
    put_all(d, 0);
    put(d, TEST_IMG, 0, 2051, 20, 27, 2);
    expect_fatal(ts, "images not 28 x 28", (LoadArgs){d, 50, 20, 0}, TEST_IMG, "27 x 27");

    d = make_dir("label-range");
    put_all(d, 0);
    {
        FILE *f = XFOPEN(join(d, TEST_LAB, ""), "r+b");
        fseek(f, 8 + 5, SEEK_SET);
        fputc(10, f);
        XFCLOSE(f, "label-range");
    }
    expect_fatal(ts, "label > 9", (LoadArgs){d, 50, 20, 0}, "label 10 of item 5", TEST_LAB);

    d = make_dir("count-mismatch");
    put_all(d, 0);
    put(d, TRAIN_LAB, 0, 2049, 69, 0, 1);
    expect_fatal(ts, "train images/labels count mismatch", (LoadArgs){d, 50, 20, 0},
                 "69 labels", "70 images");

    d = join(tmp_root, "raw", "");
    expect_fatal(ts, "n_val + n_train > file", (LoadArgs){d, 51, 20, 0}, "holds 70 images",
                 "20 + 51");
}

// ---------------------------------------------------------------------------------------------
// Real MNIST

static void test_real(TestState *ts) {
    const char *dir = t_mnist_dir();
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("  SKIPPED (no MNIST in %s): the real MNIST files\n", dir);
        return;
    }
    // Load speed is measured by build/bench/bench_data, not asserted here (a test never fails on
    // time: the machine may be busy).
    printf("real MNIST from %s (verify=1)\n", dir);
    Mnist m;
    mnist_load(&m, dir, 55000, 5000, 1);
    T_CHECK(ts, m.train.n == 55000 && m.val.n == 5000 && m.test.n == 10000,
            "counts train %d, val %d, test %d", m.train.n, m.val.n, m.test.n);
    T_CHECK(ts, m.train.h == 28 && m.train.w == 28 && m.test.h == 28 && m.test.w == 28,
            "images are 28 x 28");

    static const int want_train[10] = {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949};
    static const int want_test[10] = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};
    int ct[10] = {0}, cv[10] = {0}, cs[10] = {0}, ok_train = 1, ok_test = 1;
    for (int i = 0; i < m.train.n; i++) ct[m.train.labels[i]]++;
    for (int i = 0; i < m.val.n; i++) cv[m.val.labels[i]]++;
    for (int i = 0; i < m.test.n; i++) cs[m.test.labels[i]]++;
    for (int k = 0; k < 10; k++) {
        ok_train &= ct[k] + cv[k] == want_train[k];
        ok_test &= cs[k] == want_test[k];
    }
    T_CHECK(ts, ok_train, "train-file label counts (val + train): %d %d %d %d %d %d %d %d %d %d",
            ct[0] + cv[0], ct[1] + cv[1], ct[2] + cv[2], ct[3] + cv[3], ct[4] + cv[4],
            ct[5] + cv[5], ct[6] + cv[6], ct[7] + cv[7], ct[8] + cv[8], ct[9] + cv[9]);
    T_CHECK(ts, ok_test, "t10k label counts: %d %d %d %d %d %d %d %d %d %d", cs[0], cs[1], cs[2],
            cs[3], cs[4], cs[5], cs[6], cs[7], cs[8], cs[9]);
    // The first training label is 5 and the first test label is 7 (well-known MNIST facts);
    // validation is the start of the training file.
    T_CHECK(ts, m.val.labels[0] == 5 && m.test.labels[0] == 7,
            "first val (= first training-file) label %d, first test label %d", m.val.labels[0],
            m.test.labels[0]);

    const Dataset *sets[3] = {&m.train, &m.val, &m.test};
    float lo = 1e9f, hi = -1e9f;
    for (int s = 0; s < 3; s++)
        for (size_t i = 0; i < (size_t)sets[s]->n * 784; i++) {
            float v = sets[s]->images[i];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    T_CHECK(ts, lo == 0.0f && hi == 1.0f, "pixel range [%g, %g] == [0, 1]", lo, hi);
    mnist_free(&m);
    test_swapped(ts, dir, DATA_MNIST, DATA_FASHION_MNIST);
}

// Real Fashion-MNIST (Debian's dataset-fashion-mnist; CI installs it): counts, the balanced
// classes, the first labels, pixel range.
static void test_real_fashion(TestState *ts) {
    const char *dir = t_fashion_dir();
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("  SKIPPED (no Fashion-MNIST in %s: apt-get install dataset-fashion-mnist): the real "
               "Fashion-MNIST files\n", dir);
        return;
    }
    printf("real Fashion-MNIST from %s (verify=1)\n", dir);
    Mnist m;
    data_load(&m, DATA_FASHION_MNIST, dir, 55000, 5000, 1);
    T_CHECK(ts, m.train.n == 55000 && m.val.n == 5000 && m.test.n == 10000 && m.train.h == 28 && m.test.w == 28,
            "counts train %d, val %d, test %d, 28 x 28", m.train.n, m.val.n, m.test.n);
    int ct[10] = {0}, cs[10] = {0}, ok = 1;
    for (int i = 0; i < m.train.n; i++) ct[m.train.labels[i]]++;
    for (int i = 0; i < m.val.n; i++) ct[m.val.labels[i]]++;
    for (int i = 0; i < m.test.n; i++) cs[m.test.labels[i]]++;
    for (int k = 0; k < 10; k++) ok &= ct[k] == 6000 && cs[k] == 1000;
    T_CHECK(ts, ok, "6,000 training-file and 1,000 test images per class (class 0: %d, %d; class 9: %d, %d)",
            ct[0], cs[0], ct[9], cs[9]);
    // Fashion-MNIST's first training and test items are both ankle boots (class 9), its first
    // test items 9, 2, 1; MNIST's are 5 and 7.
    T_CHECK(ts, m.val.labels[0] == 9 && m.test.labels[0] == 9 && m.test.labels[1] == 2 && m.test.labels[2] == 1,
            "first labels: training file %d, test %d %d %d (9; 9 2 1)", m.val.labels[0], m.test.labels[0],
            m.test.labels[1], m.test.labels[2]);
    float lo = 1e9f, hi = -1e9f;
    for (size_t i = 0; i < (size_t)m.train.n * 784; i++) {
        lo = m.train.images[i] < lo ? m.train.images[i] : lo;
        hi = m.train.images[i] > hi ? m.train.images[i] : hi;
    }
    T_CHECK(ts, lo == 0.0f && hi == 1.0f, "pixel range [%g, %g] == [0, 1]", lo, hi);
    mnist_free(&m);
    test_swapped(ts, dir, DATA_FASHION_MNIST, DATA_MNIST);
}

// ---------------------------------------------------------------------------------------------
// Data directory and sampler

static void test_resolve_dir(TestState *ts) {
    printf("data directory resolution\n");
    const char *old = getenv("HYPERTRAIN_DATA");
    char *saved = old ? XSTRDUP(old) : NULL;
    setenv("HYPERTRAIN_DATA", "/env/dir", 1);
    T_CHECK(ts, !strcmp(data_resolve_dir("/job/dir"), "/job/dir"), "job dir wins over environment");
    T_CHECK(ts, !strcmp(data_resolve_dir(""), "/env/dir"), "empty job dir -> $HYPERTRAIN_DATA");
    T_CHECK(ts, !strcmp(data_resolve_dir(NULL), "/env/dir"), "NULL job dir -> $HYPERTRAIN_DATA");
    // without both: data/mnist (fetch-mnist.sh's destination) when it exists, else the shared copy
    const char *fallback = access("data/mnist", F_OK) == 0 ? "data/mnist" : SHARED_DIR;
    setenv("HYPERTRAIN_DATA", "", 1);
    T_CHECK(ts, !strcmp(data_resolve_dir(""), fallback), "empty environment -> %s", fallback);
    unsetenv("HYPERTRAIN_DATA");
    T_CHECK(ts, !strcmp(data_resolve_dir(NULL), fallback), "no environment -> %s", fallback);
    // Fashion-MNIST: the job's directory, else Debian's; $HYPERTRAIN_DATA is MNIST's
    setenv("HYPERTRAIN_DATA", "/env/dir", 1);
    T_CHECK(ts, !strcmp(data_resolve_dir_for(DATA_FASHION_MNIST, "/job/dir"), "/job/dir") &&
            !strcmp(data_resolve_dir_for(DATA_FASHION_MNIST, ""), DATA_FASHION_MNIST_DIR) &&
            !strcmp(data_resolve_dir_for(DATA_FASHION_MNIST, NULL), DATA_FASHION_MNIST_DIR) &&
            !strcmp(data_resolve_dir_for(DATA_MNIST, ""), "/env/dir"),
            "fashion-mnist: job dir, else %s (not $HYPERTRAIN_DATA, which MNIST uses)", DATA_FASHION_MNIST_DIR);
    unsetenv("HYPERTRAIN_DATA");
    if (saved) setenv("HYPERTRAIN_DATA", saved, 1);
    free(saved);
}

// Independent Fisher-Yates of epoch e, as documented in data.h.
static void reference_perm(uint64_t seed, int n, int64_t e, int *perm) {
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i >= 1; i--) {
        uint32_t j = rng_below(seed, RNG_STREAM_PERM, (uint32_t)e, 0, (uint32_t)i, (uint32_t)i + 1);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

static void test_sampler(TestState *ts) {
    printf("sampler\n");
    enum { N = 97, EPOCHS = 5 };
    Sampler s, s2, s3;
    sampler_init(&s, 1234, N);
    sampler_init(&s2, 1234, N);
    sampler_init(&s3, 1235, N);
    int seq[EPOCHS * N], ref[N];

    // Sequential reads of 5 epochs, checked against an independent shuffle.
    for (int64_t p = 0; p < EPOCHS * N; p++) seq[p] = sampler_index(&s, p);
    int perm_ok = 1, ref_ok = 1;
    for (int e = 0; e < EPOCHS; e++) {
        int seen[N] = {0};
        for (int i = 0; i < N; i++) {
            int v = seq[e * N + i];
            if (v < 0 || v >= N || seen[v]++) perm_ok = 0;
        }
        reference_perm(1234, N, e, ref);
        ref_ok &= !memcmp(ref, seq + e * N, sizeof ref);
    }
    T_CHECK(ts, perm_ok, "each of %d epochs is a permutation of 0..%d", EPOCHS, N - 1);
    T_CHECK(ts, ref_ok, "epochs equal an independent Fisher-Yates with rng_below(seed, PERM, e, 0, i, i+1)");
    int diff_epoch = memcmp(seq, seq + N, N * sizeof(int)) != 0 &&
                     memcmp(seq + N, seq + 2 * N, N * sizeof(int)) != 0;
    T_CHECK(ts, diff_epoch, "consecutive epochs have different permutations");
    int ident = 1;
    for (int i = 0; i < N; i++) ident &= seq[i] == i;
    T_CHECK(ts, !ident, "epoch 0 is shuffled (not the identity)");

    // Same seed, a different access pattern (backwards, jumping between epochs, straddling).
    int same = 1, diff_seed = 0;
    for (int64_t p = EPOCHS * N - 1; p >= 0; p--) same &= sampler_index(&s2, p) == seq[p];
    int64_t jumps[] = {3 * N + 5, 0, 4 * N + 1, N - 1, N, N - 2, N + 1, 2 * N - 1, 2 * N, 0, 4 * N - 1};
    for (size_t k = 0; k < sizeof jumps / sizeof *jumps; k++)
        same &= sampler_index(&s2, jumps[k]) == seq[jumps[k]];
    T_CHECK(ts, same, "same seed -> same stream (backwards and random-access reads)");
    for (int64_t p = 0; p < 2 * N; p++) diff_seed |= sampler_index(&s3, p) != seq[p];
    T_CHECK(ts, diff_seed, "different seed -> different stream");

    // Positions of one step straddling a boundary, as the training loop reads them.
    int straddle = 1;
    Sampler s4;
    sampler_init(&s4, 1234, N);
    for (int64_t step = 0; step * 40 + 40 <= EPOCHS * N; step++)
        for (int64_t k = 0; k < 40; k++) straddle &= sampler_index(&s4, step * 40 + k) == seq[step * 40 + k];
    T_CHECK(ts, straddle, "steps of 40 positions across epoch boundaries read the same indices");

    Sampler one;
    sampler_init(&one, 7, 1);
    T_CHECK(ts, sampler_index(&one, 0) == 0 && sampler_index(&one, 12345) == 0, "n = 1 works");
    // A large position: epoch 10^6 without computing the epochs in between.
    int64_t big = (int64_t)1000000 * N + 3;
    reference_perm(1234, N, 1000000, ref);
    T_CHECK(ts, sampler_index(&s, big) == ref[3], "position 10^6 * n + 3 -> epoch 10^6");

    sampler_free(&s);
    sampler_free(&s2);
    sampler_free(&s3);
    sampler_free(&s4);
    sampler_free(&one);
}

// ---------------------------------------------------------------------------------------------

static void remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            remove_tree(sub);
        }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

int main(void) {
    TestState ts = {0};
    snprintf(tmp_root, sizeof tmp_root, "/tmp/ht_test_data_XXXXXX");
    HT_CHECK(mkdtemp(tmp_root), "mkdtemp");
    test_sha256(&ts);
    test_synthetic(&ts);
    test_bad_input(&ts);
    test_bad_input_fashion(&ts);
    test_real(&ts);
    test_real_fashion(&ts);
    test_resolve_dir(&ts);
    test_sampler(&ts);
    remove_tree(tmp_root);
    return test_summary(&ts, "test_data");
}
