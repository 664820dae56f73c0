// fuzz_job: the job parser (src/config.c). Input: a JSON job, optionally followed by a NUL byte
// and "key=value" overrides, one per line (as --set gives them). Checks job_validate and the
// round trip documented in config.h: job_to_json of the parsed job loads back to the same JSON.
#include "fuzz.h"

#include "config.h"

typedef struct {
    const char *json;
    char *sets;        // NUL-separated assignments (newlines replaced), or NULL
    size_t sets_len;
} JobInput;

static void parse_and_check(void *arg) {
    const JobInput *in = arg;
    Job job;
    job_defaults(&job);
    job_from_json_string(&job, in->json, "fuzz.json");
    for (size_t i = 0; in->sets && i < in->sets_len; i += strlen(in->sets + i) + 1)
        if (in->sets[i]) job_set(&job, in->sets + i);
    job_validate(&job);
    char *a = job_to_json(&job);
    Job back;
    job_defaults(&back);
    job_from_json_string(&back, a, "round trip");
    char *b = job_to_json(&back);
    if (strcmp(a, b) != 0) {
        fprintf(stderr, "fuzz_job: job_to_json does not round-trip:\n%s\n---\n%s\n", a, b);
        abort();
    }
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    size_t json_len = strlen(buf);
    JobInput in = { buf, NULL, 0 };
    if (json_len < size) {
        in.sets = buf + json_len + 1;
        in.sets_len = size - json_len - 1;
        for (size_t i = 0; i < in.sets_len; i++)
            if (in.sets[i] == '\n') in.sets[i] = '\0';
    }
    fuzz_try(parse_and_check, &in);
    free(buf);
    return 0;
}
