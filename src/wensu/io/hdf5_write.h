// Writing result files in HDF5 (embeddings of `wensu embed` and `wensu mm embed`): datasets of
// float32 rows and UTF-8 strings, string attributes, and the atomic create-fill-rename that
// leaves either the whole file or none. Errors name the file and the dataset.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace wensu::io {

// Creates <path>.tmp.<pid>, runs fill(file), flushes, closes and renames it to path. On an
// error the temporary file is removed and the error rethrown: no partial output.
void write_hdf5_atomically(const std::string& path, const std::function<void(hid_t file)>& fill);

// float32 dataset [rows, cols] from row-major v (path names the file in errors).
void write_f32_matrix(hid_t loc, const std::string& name, const float* v, int64_t rows, int64_t cols,
                      const std::string& path);
// Variable-length UTF-8 string dataset [v.size()].
void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& v, const std::string& path);
// A string attribute on loc (a file, group or dataset): variable-length UTF-8 (io/hdf5.h).
void write_string_attr(hid_t loc, const char* name, const std::string& value, const std::string& path);

}  // namespace wensu::io
