// data.c: IDX reader for MNIST and Fashion-MNIST (gzip or raw, through zlib), SHA-256
// verification while reading against each data set's table, the validation/training split, and
// the epoch-permutation sampler. See docs/data.md.
#include "data.h"

#include <unistd.h>

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "common.h"
#include "rng.h"
#include "sha256.h"

#define IDX_MAGIC_IMAGES 2051  // 0x00000803: unsigned bytes, 3 dimensions
#define IDX_MAGIC_LABELS 2049  // 0x00000801: unsigned bytes, 1 dimension
#define MNIST_SIDE 28
#define IDX_MAX_BYTES ((uint64_t)1 << 31)  // far above MNIST's 47 MB; guards against bad headers
#define READ_CHUNK ((size_t)4 << 20)

// The four IDX files of every data set, in this order (DataSetInfo.sha256 follows it).
static const char *const IDX_NAMES[4] = {
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
};

typedef struct {
    const char *name;      // the job's "data.dataset" value
    const char *title;     // for messages
    const char *fetch;     // how to get it (messages about a missing directory or file)
    const char *sha256[4]; // of the uncompressed original files, in IDX_NAMES order
} DataSetInfo;

static const DataSetInfo DATA_SETS[DATA_N_SETS] = {
    // The LeCun MNIST distribution.
    {"mnist", "MNIST", "scripts/fetch-mnist.sh downloads MNIST",
     {"ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
      "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
      "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
      "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"}},
    // Zalando's Fashion-MNIST. Computed from Debian's dataset-fashion-mnist (0.0~git20200523)
    // with zcat | sha256sum; the MD5s of the same uncompressed files equal those public loaders
    // list for the upstream files (docs/data.md: Debian recompressed the .gz files).
    {"fashion-mnist", "Fashion-MNIST",
     "apt-get install dataset-fashion-mnist puts Fashion-MNIST in " DATA_FASHION_MNIST_DIR,
     {"c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
      "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
      "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
      "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"}},
};

static const DataSetInfo *data_set(int id) {
    HT_CHECK(id >= 0 && id < DATA_N_SETS, "unknown data set %d (expected 0 to %d)", id, DATA_N_SETS - 1);
    return &DATA_SETS[id];
}

const char *data_set_name(int id) { return id >= 0 && id < DATA_N_SETS ? DATA_SETS[id].name : NULL; }
const char *data_set_title(int id) { return id >= 0 && id < DATA_N_SETS ? DATA_SETS[id].title : NULL; }

const char *data_resolve_dir_for(int id, const char *job_dir) {
    if (job_dir && job_dir[0]) return job_dir;
    if (id == DATA_FASHION_MNIST) return DATA_FASHION_MNIST_DIR;
    data_set(id);  // fatal for an unknown id
    const char *env = getenv("HYPERTRAIN_DATA");
    if (env && env[0]) return env;
    // scripts/fetch-mnist.sh's default destination, else the shared copy beside the checkout
    if (access("data/mnist", F_OK) == 0) return "data/mnist";
    return "../shared/data/mnist";
}

const char *data_resolve_dir(const char *job_dir) { return data_resolve_dir_for(DATA_MNIST, job_dir); }

// ---------------------------------------------------------------------------------------------
// IDX reading

// One IDX file being read. Every error goes through idx_fail, which closes the file and frees the
// data before the fatal message (nothing leaks where a caller survives ht_fatal: the fuzz build).
typedef struct {
    gzFile f;
    const char *path;
    Sha256 *sh;        // NULL: no hashing
    uint8_t *data;     // the payload read so far
    uint64_t file_size; // bytes on disk (0 if unknown)
} IdxReader;

static void idx_fail(IdxReader *r, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void idx_fail(IdxReader *r, const char *fmt, ...) {
    char msg[8192];   // a path (<= PATH_MAX) and a sentence
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r->f) gzclose(r->f);
    r->f = NULL;
    free(r->data);
    r->data = NULL;
    HT_FATAL("%s", msg);
}

// Ends the process when the last gzread left an error behind. zlib reports a gzip stream that
// ends early (truncated download) as Z_BUF_ERROR "unexpected end of file", a bad CRC or deflate
// stream as Z_DATA_ERROR; a raw (uncompressed) file never sets either.
static void gz_check(IdxReader *r) {
    int err = Z_OK;
    const char *msg = gzerror(r->f, &err);
    if (err == Z_OK || err == Z_STREAM_END) return;
    if (err == Z_ERRNO) idx_fail(r, "cannot read '%s': %s", r->path, strerror(errno));
    size_t plen = strlen(r->path);  // zlib prefixes its message with "path: "
    if (msg && !strncmp(msg, r->path, plen) && !strncmp(msg + plen, ": ", 2)) msg += plen + 2;
    idx_fail(r, "truncated or corrupt gzip file '%s' (zlib: %s)", r->path, msg ? msg : "?");
}

// Reads up to n bytes, stopping early only at end of file; hashes what it read.
static size_t gz_read_full(IdxReader *r, uint8_t *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        size_t want = n - got < READ_CHUNK ? n - got : READ_CHUNK;
        int k = gzread(r->f, buf + got, (unsigned)want);
        if (k < 0) gz_check(r);
        if (k < 0) idx_fail(r, "cannot read '%s'", r->path);  // gz_check did not recognize the error
        if (k == 0) break;
        if (r->sh) sha256_update(r->sh, buf + got, (size_t)k);
        got += (size_t)k;
    }
    if (got < n) gz_check(r);
    return got;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static const char *idx_kind(int magic) {
    return magic == IDX_MAGIC_IMAGES ? "images" : magic == IDX_MAGIC_LABELS ? "labels" : "IDX";
}

// Reads the magic and the nd dimensions; returns the data bytes they announce.
static uint64_t idx_header(IdxReader *r, int expect_magic, int nd, int dims[3], char *shape, size_t shape_n) {
    uint8_t hdr[16];
    size_t hlen = 4 + 4 * (size_t)nd;
    size_t got = gz_read_full(r, hdr, 4);
    if (got != 4) idx_fail(r, "'%s': only %zu bytes, too short for an IDX header", r->path, got);
    uint32_t magic = be32(hdr);
    if (magic != (uint32_t)expect_magic)
        idx_fail(r, "'%s': wrong IDX magic 0x%08x, expected %d (%s)", r->path, (unsigned)magic, expect_magic,
                 idx_kind(expect_magic));
    got += gz_read_full(r, hdr + 4, hlen - 4);
    if (got != hlen) idx_fail(r, "'%s': IDX header cut short (%zu of %zu bytes)", r->path, got, hlen);
    uint64_t nbytes = 1;
    shape[0] = '\0';
    for (int d = 0; d < nd; d++) {
        uint32_t v = be32(hdr + 4 + 4 * d);
        if (v < 1 || v > (1u << 30)) idx_fail(r, "'%s': IDX dimension %d is %u", r->path, d, (unsigned)v);
        dims[d] = (int)v;
        nbytes *= v;
        if (nbytes > IDX_MAX_BYTES)
            idx_fail(r, "'%s': IDX header announces more than %llu data bytes", r->path,
                     (unsigned long long)IDX_MAX_BYTES);
        size_t used = strlen(shape);
        XSNPRINTF(shape + used, shape_n - used, "%s%u", d ? " x " : "", (unsigned)v);
    }
    return nbytes;
}

// Reads the nbytes of data into r->data, which grows with what the file holds (a header that
// announces 2 GB in a 100-byte file allocates no 2 GB; gzip rarely packs MNIST-like data more than
// 8:1, so real files get their whole buffer at once), then checks that nothing follows.
static void idx_payload(IdxReader *r, uint64_t nbytes, const char *shape) {
    uint64_t first = r->file_size * 8 > READ_CHUNK ? r->file_size * 8 : READ_CHUNK;
    size_t cap = nbytes < first ? (size_t)nbytes : (size_t)first, got = 0;
    r->data = XMALLOC(cap);
    for (;;) {
        size_t k = gz_read_full(r, r->data + got, cap - got);
        got += k;
        if (got < cap || cap == nbytes) break;
        cap = cap * 2 < nbytes ? cap * 2 : (size_t)nbytes;
        r->data = XREALLOC(r->data, cap);
    }
    if (got != nbytes)
        idx_fail(r, "'%s': data length %zu bytes does not match the IDX header (dims %s: %llu bytes): the "
                 "file is truncated", r->path, got, shape, (unsigned long long)nbytes);
    // Anything after the data is an error too; reading to the end also lets zlib check the
    // gzip trailer (CRC and length), so a file cut inside the trailer is caught here.
    uint8_t extra[4096];
    size_t nextra = 0, k;
    while ((k = gz_read_full(r, extra, sizeof extra)) > 0) nextra += k;
    if (nextra != 0)
        idx_fail(r, "'%s': data length %llu bytes does not match the IDX header (dims %s: %llu bytes): the "
                 "file has %zu trailing bytes", r->path, (unsigned long long)(nbytes + nextra), shape,
                 (unsigned long long)nbytes, nextra);
}

uint8_t *idx_read(const char *path, int expect_magic, int dims[3], int *ndim, char sha256_hex[65]) {
    int nd = expect_magic & 0xff;
    HT_CHECK((expect_magic >> 8) == 0x08 && nd >= 1 && nd <= 3,
             "idx_read: unsupported IDX magic %d (unsigned bytes, 1-3 dims only)", expect_magic);
    Sha256 sh;
    struct stat st;
    IdxReader r = { gzopen(path, "rb"), path, sha256_hex ? &sh : NULL, NULL,
                    stat(path, &st) == 0 ? (uint64_t)st.st_size : 0 };
    if (!r.f) HT_FATAL("cannot open '%s': %s", path, errno ? strerror(errno) : "out of memory");
    // A large buffer for MNIST's 47 MB; zlib's default for small files.
    gzbuffer(r.f, r.file_size < (1 << 18) ? 8192 : 1 << 18);
    if (r.sh) sha256_init(r.sh);
    char shape[64];
    uint64_t nbytes = idx_header(&r, expect_magic, nd, dims, shape, sizeof shape);
    *ndim = nd;
    idx_payload(&r, nbytes, shape);
    int rc = gzclose(r.f);
    r.f = NULL;
    if (rc != Z_OK) idx_fail(&r, "truncated or corrupt gzip file '%s' (gzclose: %d)", path, rc);
    if (sha256_hex) {
        uint8_t digest[32];
        sha256_final(&sh, digest);
        sha256_to_hex(digest, sha256_hex);
    }
    return r.data;
}

// ---------------------------------------------------------------------------------------------
// MNIST-layout data sets

typedef struct {
    char path[4096];
    int dims[3], ndim;
    uint8_t *data;
} IdxFile;

// " It is <other>'s <file>: ..." when a mismatching hash is another data set's file, else "".
static void other_set_hint(char *out, size_t cap, const char *hex, int id) {
    out[0] = '\0';
    for (int k = 0; k < DATA_N_SETS; k++)
        for (int i = 0; i < 4 && k != id; i++)
            if (!strcmp(hex, DATA_SETS[k].sha256[i]))
                XSNPRINTF(out, cap, " It is %s's %s: set data.dataset=%s in the job to use it.",
                          DATA_SETS[k].title, IDX_NAMES[i], DATA_SETS[k].name);
}

// Finds dir/NAME.gz, else dir/NAME, reads it and checks it against data set `id`'s checksum
// when asked.
static void idx_file_read(IdxFile *f, const DataSetInfo *ds, const char *dir, int which, int magic,
                          int verify) {
    const char *name = IDX_NAMES[which];
    struct stat st;
    int n = snprintf(f->path, sizeof f->path, "%s/%s.gz", dir, name);
    HT_CHECK(n > 0 && (size_t)n < sizeof f->path, "data path too long: '%s/%s.gz'", dir, name);
    if (stat(f->path, &st) != 0) {
        f->path[n - 3] = '\0';  // drop ".gz"
        HT_CHECK(stat(f->path, &st) == 0, "data directory '%s' holds neither '%s.gz' nor '%s' (%s)",
                 dir, name, name, ds->fetch);
    }
    char hex[65];
    f->data = idx_read(f->path, magic, f->dims, &f->ndim, verify ? hex : NULL);
    if (verify && strcmp(hex, ds->sha256[which]) != 0) {
        char hint[256];
        other_set_hint(hint, sizeof hint, hex, (int)(ds - DATA_SETS));
        free(f->data);
        f->data = NULL;
        HT_FATAL("'%s': SHA-256 of the uncompressed contents is %s, expected %s (the original %s %s); "
                 "the file is damaged or not the original %s.%s For other data in this format, "
                 "set data.verify=false in the job", f->path, hex, ds->sha256[which], ds->title, name,
                 ds->title, hint);
    }
}

static void idx_read_pair(IdxFile *img, IdxFile *lab, const DataSetInfo *ds, const char *dir,
                          int which_images, int verify) {
    idx_file_read(img, ds, dir, which_images, IDX_MAGIC_IMAGES, verify);
    HT_CHECK(img->dims[1] == MNIST_SIDE && img->dims[2] == MNIST_SIDE,
             "'%s': images are %d x %d, expected %d x %d", img->path, img->dims[1], img->dims[2],
             MNIST_SIDE, MNIST_SIDE);
    idx_file_read(lab, ds, dir, which_images + 1, IDX_MAGIC_LABELS, verify);
    HT_CHECK(lab->dims[0] == img->dims[0], "'%s' holds %d labels but '%s' holds %d images",
             lab->path, lab->dims[0], img->path, img->dims[0]);
    for (int i = 0; i < lab->dims[0]; i++)
        HT_CHECK(lab->data[i] <= 9, "'%s': label %d of item %d is not a digit 0-9", lab->path,
                 lab->data[i], i);
}

// Copies items [first, first + n) of an images/labels pair into a Dataset, pixels / 255.
static void dataset_fill(Dataset *ds, const IdxFile *img, const IdxFile *lab, int first, int n) {
    float lut[256];
    for (int v = 0; v < 256; v++) lut[v] = (float)v / 255.0f;
    size_t px = (size_t)img->dims[1] * (size_t)img->dims[2];
    ds->n = n;
    ds->h = img->dims[1];
    ds->w = img->dims[2];
    ds->images = XALLOC_FLOATS(XMUL(n, px, "'%s': %d images of %zu pixels", img->path, n, px));
    ds->labels = XMALLOC((size_t)n);
    const uint8_t *src = img->data + (size_t)first * px;
    for (size_t i = 0; i < (size_t)n * px; i++) ds->images[i] = lut[src[i]];
    memcpy(ds->labels, lab->data + first, (size_t)n);
}

void data_load(Mnist *m, int id, const char *dir, int n_train, int n_val, int verify) {
    const DataSetInfo *ds = data_set(id);
    struct stat st;
    HT_CHECK(dir && dir[0] && stat(dir, &st) == 0,
             "data directory '%s' does not exist (set data.dir in the job%s; %s)", dir ? dir : "",
             id == DATA_MNIST ? ", --data DIR, or HYPERTRAIN_DATA" : " or --data DIR", ds->fetch);
    HT_CHECK(S_ISDIR(st.st_mode), "data directory '%s' is not a directory", dir);
    HT_CHECK(n_train >= 0 && n_val >= 0, "n_train (%d) and n_val (%d) must be >= 0", n_train, n_val);
    memset(m, 0, sizeof *m);

    IdxFile img, lab;
    idx_read_pair(&img, &lab, ds, dir, 0, verify);
    HT_CHECK((long long)n_val + n_train <= img.dims[0],
             "'%s' holds %d images, fewer than the job's \"data.validation\" + \"data.train\" = %d + %d", img.path, img.dims[0],
             n_val, n_train);
    dataset_fill(&m->val, &img, &lab, 0, n_val);  // the first n_val images, as the original did
    dataset_fill(&m->train, &img, &lab, n_val, n_train);
    free(img.data);
    free(lab.data);

    idx_read_pair(&img, &lab, ds, dir, 2, verify);
    dataset_fill(&m->test, &img, &lab, 0, img.dims[0]);
    free(img.data);
    free(lab.data);
}

void mnist_load(Mnist *m, const char *dir, int n_train, int n_val, int verify) {
    data_load(m, DATA_MNIST, dir, n_train, n_val, verify);
}

static void dataset_free(Dataset *d) {
    free(d->images);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

void mnist_free(Mnist *m) {
    dataset_free(&m->train);
    dataset_free(&m->val);
    dataset_free(&m->test);
}

void mnist_synthetic(Mnist *m, int n_train, int n_val) {
    memset(m, 0, sizeof(*m));
    Dataset *sets[3] = {&m->train, &m->val, &m->test};
    const int sizes[3] = {n_train, n_val, 1};
    for (int s = 0; s < 3; s++) {
        Dataset *ds = sets[s];
        ds->n = sizes[s]; ds->h = 28; ds->w = 28;
        ds->images = XALLOC_FLOATS(XMUL(ds->n, 784, "synthetic MNIST: %d images", ds->n));
        ds->labels = XMALLOC((size_t)ds->n);
        for (size_t i = 0; i < (size_t)ds->n * 784; i++) ds->images[i] = (float)((i * 2654435761u) % 256) / 255.0f;
        for (int i = 0; i < ds->n; i++) ds->labels[i] = (uint8_t)(i % 10);
    }
}

// ---------------------------------------------------------------------------------------------
// Sampler

static void sampler_fill(Sampler *s, int slot, int64_t epoch) {
    int *perm = s->perm[slot];
    for (int i = 0; i < s->n; i++) perm[i] = i;
    for (int i = s->n - 1; i >= 1; i--) {
        int j = (int)rng_below(s->seed, RNG_STREAM_PERM, (uint32_t)epoch, 0, (uint32_t)i,
                               (uint32_t)i + 1);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    s->epoch[slot] = epoch;
}

void sampler_init(Sampler *s, uint64_t seed, int n) {
    HT_CHECK(n > 0, "sampler needs at least one training image (n = %d)", n);
    s->seed = seed;
    s->n = n;
    for (int k = 0; k < 2; k++) {
        s->epoch[k] = -1;
        s->perm[k] = XMALLOC((size_t)n * sizeof(int));
    }
}

int sampler_index(Sampler *s, int64_t position) {
    HT_CHECK(position >= 0, "sampler position %lld is negative", (long long)position);
    int64_t epoch = position / s->n;
    int slot = (int)(epoch & 1);  // consecutive epochs live in different slots
    if (s->epoch[slot] != epoch) sampler_fill(s, slot, epoch);
    return s->perm[slot][position % s->n];
}

void sampler_free(Sampler *s) {
    for (int k = 0; k < 2; k++) {
        free(s->perm[k]);
        s->perm[k] = NULL;
        s->epoch[k] = -1;
    }
}
