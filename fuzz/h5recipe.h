// h5recipe.h: builds an HDF5 file from a "recipe", a compact binary description of groups,
// datasets and attributes that the HDF5 harnesses (fuzz_checkpoint, fuzz_samples) take as
// input. The fuzzer then mutates names, types, shapes, storage and values of a structurally
// valid file (what our readers must check), not the bytes of HDF5's own on-disk format (HDF5's
// parser is upstream's to fuzz; see docs/fuzzing.md). fuzz/h5_to_recipe.py turns real files
// (a checkpoint, a sample set) into recipes: the seed corpora.
//
// recipe  := record*
// record  := op:u8 body                       op % 3: 0 group, 1 dataset, 2 attribute
//   group     path:str
//   dataset   path:str type space flags:u8 data      flags bit 0: chunked, bit 1: + deflate
//   attribute objpath:str name:str type space data
// str     := len:u8 byte[len]
// type    := code:u8 [size:u8 (fixed strings: size + 1 bytes)]
//            code % 10: 0 f32le 1 f64le 2 i32le 3 i64le 4 u64le 5 u8 6 variable-length UTF-8
//            string 7 fixed-length ASCII string 8 f32be 9 i16le
// space   := rank:u8 [dim:u32le * rank]          rank % 8: 0 scalar, 1-6 simple, 7 null
// data    := the elements, little-endian, npoints * size bytes (zero-filled where the input
//            ends); variable-length strings: len:u16le byte[len] each. A dataset larger than
//            64 KiB (or 4096 strings) is created without data (HDF5 reads fill values); such an
//            attribute is left out.
#ifndef HT_H5RECIPE_H
#define HT_H5RECIPE_H

#include <stddef.h>
#include <stdint.h>

// Writes the file the recipe describes to path (replacing it); built in memory, written with one
// write. Records HDF5 refuses (a bad name, a duplicate) are skipped. Returns 0, or -1 if the
// file could not be built or written.
int h5recipe_build(const uint8_t *data, size_t size, const char *path);

#endif
