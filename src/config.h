// config.h: the job: every setting of a run, resolved from defaults, a JSON job file and
// --set overrides. The resolved job is printed at start and stored in the run directory and
// in every checkpoint, so a run can always be reproduced from its outputs.
#ifndef HT_CONFIG_H
#define HT_CONFIG_H

#include <stdint.h>

#define HT_MAX_OPS 32
#define HT_MAX_HIDDEN 8
#define HT_MAX_MIX 32
#define HT_PATH_MAX 1024

typedef enum { OP_CONV = 0, OP_FC, OP_RELU, OP_MAXPOOL } OpType;

// One entry of the job's "target.layers" list.
typedef struct {
    OpType type;
    int kernel;                    // conv: kernel size (odd); maxpool: window = stride
    int filters;                   // conv: output channels; fc: units
    int gen_hidden[HT_MAX_HIDDEN]; // conv/fc: hidden sizes of this layer's weight generator
    int n_gen_hidden;
    int per_filter;                // conv/fc: 1 = one code per filter, generator shared by
                                   // filters; 0 = one code generates the whole layer
} LayerSpec;

typedef enum { TASK_MNIST = 0, TASK_TOY = 1 } Task;
typedef enum { DIST_L1 = 0, DIST_L2 = 1 } Distance;
typedef enum { EVAL_FP32 = 0, EVAL_BF16 = 1 } EvalPrecision;
typedef enum { CUDA_MATH_FP32 = 0, CUDA_MATH_TF32 = 1 } CudaMath;

typedef struct {
    char name[64];                 // "name": run name (default "run")
    Task task;                     // "task": "mnist" | "toy"
    uint64_t seed;                 // "seed": >= 0
    int steps;                     // "steps": total training steps, >= 1
    int batch;                     // "batch": noise batch B (networks per step), >= 2
    int images_per_sample;         // "images_per_sample": training images per network per step
    double lambda;                 // "lambda": weight of the accuracy term, > 0
    double lambda_growth;          // "lambda_growth": lambda_t = lambda * growth^t, > 0
    double lr;                     // "lr": Adam learning rate, > 0
    double lr_decay;               // "lr_decay": lr_t = lr * decay^t, (0, 1]
    double beta1, beta2, adam_eps; // "adam_beta1", "adam_beta2", "adam_eps"
    Distance distance;             // "entropy_distance": "l1" (original code) | "l2" (paper text)
    int z_dim;                     // "z_dim": noise dimension d (also the entropy's d)
    int code_size;                 // "code_size": size of each code from the extractor
    int ext_hidden[HT_MAX_HIDDEN]; // "extractor_hidden": hidden sizes of the extractor E
    int n_ext_hidden;
    double leaky_alpha;            // "leaky_alpha": leaky ReLU slope, [0, 1)
    double bn_eps;                 // "bn_eps": batch-norm epsilon, > 0
    double bn_decay;               // "bn_decay": running-average decay, [0, 1)
    double init_scale;             // "init_scale": variance scaling over fan-in, > 0
    int gauge_fixing;              // "gauge_fixing": true/false
    // Target network ("target" object)
    int input_h, input_w, input_c; // "target.input": [h, w, c]
    int classes;                   // "target.classes"
    LayerSpec layers[HT_MAX_OPS];  // "target.layers"
    int n_layers;
    // Data ("data" object)
    int dataset;                   // "data.dataset": DataSetId of data.h, "mnist" (default) |
                                   // "fashion-mnist" (the same IDX layout)
    char data_dir[HT_PATH_MAX];    // "data.dir" (else the data set's default: data_resolve_dir_for)
    int n_train, n_val;            // "data.train", "data.validation": split of the training file
    int verify_checksums;          // "data.verify": true/false
    // Schedule
    int val_every;                 // "val_every": validate every K steps (0 = only at the end)
    int val_samples;               // "val_samples": networks drawn at validation (200)
    int val_images;                // "val_images": validation images used (0 = all)
    EvalPrecision eval_precision;  // "eval_precision": "fp32" (default) | "bf16": the validation's
                                   // target network forward (bf16 dot products; never training)
    CudaMath cuda_math;            // "cuda_math": "fp32" (default) | "tf32": the GPU trainer's conv
                                   // GEMMs on TF32 tensor cores (cuBLAS, im2col path); a CPU run
                                   // refuses "tf32"
    int ckpt_every;                // "checkpoint_every": checkpoint every K steps (0 = only at end)
    int keep_ckpt;                 // "keep_checkpoints": how many recent checkpoints to keep, >= 1
    int log_every;                 // "log_every": progress line every K steps
    int threads;                   // "threads": OpenMP threads per rank (0 = OMP default)
    // Toy problem ("toy" object), used when task = toy
    int toy_hidden[HT_MAX_HIDDEN]; // "toy.hidden": [30, 10, 10]
    int n_toy_hidden;
    double toy_l2;                 // "toy.l2": l2 regularization weight on the generated points
    int toy_n_mix;
    double toy_means[HT_MAX_MIX][2]; // "toy.means": [[x, y], ...]
    double toy_sigma;              // "toy.sigma": isotropic std of each component
    int toy_curve_points;          // "toy.curve_points": points of the written curve (400)
} Job;

// Fills *job with the built-in defaults: the paper's MNIST run.
void job_defaults(Job *job);
// Applies a JSON job file on top of *job. Unknown keys, wrong types and out-of-range values are
// fatal errors naming the file and the key.
void job_load_file(Job *job, const char *path);
// Applies one "key=value" override (dotted keys for nested objects: "target.classes=10",
// "lambda=1e5"; the value is JSON, or a bare string). Fatal on unknown key or bad value.
void job_set(Job *job, const char *assignment);
// Checks cross-field consistency (e.g. the last layer's units equal the classes). Fatal on error.
void job_validate(const Job *job);
// The resolved job as pretty-printed JSON (caller frees). Loading it back gives the same Job.
char *job_to_json(const Job *job);
// Parses a JSON string (e.g. the job stored in a checkpoint) into *job, on top of defaults.
void job_from_json_string(Job *job, const char *json, const char *what);

#endif
