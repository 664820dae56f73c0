// nccl_abi.c: prints the NCCL values and checks the signatures that mpi/comm_nccl.c relies on.
// tests/t_cuda_build.sh compiles it once against the real nccl.h and once against
// cuda/nccl_compat/nccl.h (with -Werror: a wrong signature fails to compile) and compares the
// output; linked with the Makefile's NCCL_LIBS it also proves that -l:libnccl.so.2 links and loads.
#include <stdio.h>

#include <nccl.h>

int main(void) {
    ncclResult_t (*all_reduce)(const void *, void *, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t) =
        ncclAllReduce;
    ncclResult_t (*all_gather)(const void *, void *, size_t, ncclDataType_t, ncclComm_t, cudaStream_t) = ncclAllGather;
    ncclResult_t (*bcast)(const void *, void *, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t) = ncclBroadcast;
    ncclResult_t (*init)(ncclComm_t *, int, ncclUniqueId, int) = ncclCommInitRank;
    ncclResult_t (*uid)(ncclUniqueId *) = ncclGetUniqueId;
    ncclResult_t (*destroy)(ncclComm_t) = ncclCommDestroy, (*abort_)(ncclComm_t) = ncclCommAbort;
    const char *(*err)(ncclResult_t) = ncclGetErrorString;
    const char *(*last)(ncclComm_t) = ncclGetLastError;
    ncclResult_t (*gs)(void) = ncclGroupStart, (*ge)(void) = ncclGroupEnd;
    ncclResult_t (*ver)(int *) = ncclGetVersion;
    void *fns[] = {(void *)all_reduce, (void *)all_gather, (void *)bcast, (void *)init, (void *)uid, (void *)destroy,
                   (void *)abort_, (void *)err, (void *)last, (void *)gs, (void *)ge, (void *)ver};
    int resolved = 0;
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) resolved += fns[i] != NULL;
    printf("unique id %zu bytes; success %d invalid-argument %d invalid-usage %d; int32 %d float32 %d float64 %d; "
           "sum %d; %d functions\n", sizeof(ncclUniqueId), (int)ncclSuccess, (int)ncclInvalidArgument,
           (int)ncclInvalidUsage, (int)ncclInt32, (int)ncclFloat32, (int)ncclFloat64, (int)ncclSum, resolved);
    int v = 0;
    if (ncclGetVersion(&v) != ncclSuccess || v <= 0) { fprintf(stderr, "ncclGetVersion failed\n"); return 1; }
    fprintf(stderr, "NCCL library version code %d\n", v);
    return 0;
}
