# Bad MNIST directories and IDX files (sourced by tests/t_bad_inputs.sh). Every file is crafted
# in $W; a run of the tiny job stops while loading the data. The run directory it creates first
# lives outside $W ($RUNS), so that the check "no file changed" covers only the crafted inputs.
RUNS=$(mktemp -d /tmp/ht_bad_runs_XXXXXX)
run_on() { local dir=$1; shift; "$HT" "$ROOT/jobs/tiny.json" --data "$dir" --out "$RUNS/$(basename "$dir")" --quiet --set steps=1 "$@"; }
idx_images() { # FILE N H W: an IDX images header (magic 2051) for N x H x W, no data
  python3 -c 'import struct, sys; sys.stdout.buffer.write(struct.pack(">IIII", 2051, *map(int, sys.argv[1:4])))' "$2" "$3" "$4" > "$1"
}
bad missing_dir 1 "data directory '.*/nonexistent' does not exist \(set data.dir in the job, --data DIR, or HYPERTRAIN_DATA" -- run_on "$W/nonexistent"
mkdir -p empty
bad empty_dir 1 "data directory '.*/empty' holds neither 'train-images-idx3-ubyte.gz' nor 'train-images-idx3-ubyte'" -- run_on "$W/empty"
printf 'x' > notadir
bad dir_is_a_file 1 "data directory '.*/notadir' is not a directory" -- run_on "$W/notadir"
mkdir -p trunc && idx_images trunc/train-images-idx3-ubyte 60000 28 28 && head -c 100 /dev/zero >> trunc/train-images-idx3-ubyte
bad truncated_idx 1 "train-images-idx3-ubyte': data length 100 bytes does not match the IDX header \(dims 60000 x 28 x 28: 47040000 bytes\): the file is truncated" -- run_on "$W/trunc"
mkdir -p magic && { printf '\x00\x00\x08\x01\x00\x00\x00\x0a'; head -c 10 /dev/zero; } > magic/train-images-idx3-ubyte
bad wrong_magic 1 "train-images-idx3-ubyte': wrong IDX magic 0x00000801, expected 2051 \(images\)" -- run_on "$W/magic"
mkdir -p short && printf '\x00\x00\x08' > short/train-images-idx3-ubyte
bad header_too_short 1 "only 3 bytes, too short for an IDX header" -- run_on "$W/short"
mkdir -p trail && idx_images trail/train-images-idx3-ubyte 10 28 28 && head -c 7850 /dev/zero >> trail/train-images-idx3-ubyte
bad trailing_bytes 1 "the file has 10 trailing bytes" -- run_on "$W/trail"
mkdir -p small && idx_images small/train-images-idx3-ubyte 10 28 28 && head -c 7840 /dev/zero >> small/train-images-idx3-ubyte
bad checksum_mismatch 1 "train-images-idx3-ubyte': SHA-256 of the uncompressed contents is [0-9a-f]{64}, expected [0-9a-f]{64} .*set data.verify=false" -- run_on "$W/small"
mkdir -p few && cp small/train-images-idx3-ubyte few/ && printf '\x00\x00\x08\x01\x00\x00\x00\x0a\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09' > few/train-labels-idx1-ubyte
bad fewer_images_than_split 1 "holds 10 images, fewer than the job's \"data.validation\" \+ \"data.train\" = 500 \+ 2000" -- run_on "$W/few" --set data.verify=false
mkdir -p badlab && cp small/train-images-idx3-ubyte badlab/ && printf '\x00\x00\x08\x01\x00\x00\x00\x0a\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0c' > badlab/train-labels-idx1-ubyte
bad label_not_a_digit 1 "train-labels-idx1-ubyte': label 12 of item 9 is not a digit 0-9" -- run_on "$W/badlab" --set data.verify=false
mkdir -p side32 && idx_images side32/train-images-idx3-ubyte 10 32 32 && head -c 10240 /dev/zero >> side32/train-images-idx3-ubyte
bad wrong_image_size 1 "images are 32 x 32, expected 28 x 28" -- run_on "$W/side32" --set data.verify=false
if need_mnist "corrupt gzip (cut from the real file)"; then
  mkdir -p gz && head -c 5000 "$DATA/train-images-idx3-ubyte.gz" > gz/train-images-idx3-ubyte.gz
  bad corrupt_gzip 1 "truncated or corrupt gzip file '.*/gz/train-images-idx3-ubyte.gz'" -- run_on "$W/gz"
fi
rm -rf "$RUNS"
