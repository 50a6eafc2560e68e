#include "wensu/io/hdf5_write.h"

#include <unistd.h>

#include <filesystem>

#include "wensu/core/check.h"
#include "wensu/io/hdf5.h"

namespace wensu::io {
namespace {

void check_h5(bool ok, const std::string& path, const std::string& what) {
  WENSU_CHECK(ok, "writing ", path, " failed (", what, "): is the disk full or the folder read-only?");
}

}  // namespace

void write_hdf5_atomically(const std::string& path, const std::function<void(hid_t)>& fill) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  QuietHdf5 quiet;
  Hdf5Handle file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  WENSU_CHECK(file.get() >= 0, "cannot create ", tmp, " (does the folder exist and is it writable?)");
  try {
    fill(file.get());
    check_h5(H5Fflush(file.get(), H5F_SCOPE_GLOBAL) >= 0, path, "flush");
    check_h5(file.reset() >= 0, path, "close");
  } catch (...) {
    file.reset();
    std::filesystem::remove(tmp);
    throw;
  }
  std::filesystem::rename(tmp, path);
}

void write_f32_matrix(hid_t loc, const std::string& name, const float* v, int64_t rows, int64_t cols,
                      const std::string& path) {
  hsize_t dims[2] = {hsize_t(rows), hsize_t(cols)};
  Hdf5Handle space(H5Screate_simple(2, dims, nullptr), H5Sclose);
  Hdf5Handle set(H5Dcreate2(loc, name.c_str(), H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                 H5Dclose);
  check_h5(set.get() >= 0, path, name);
  check_h5(rows == 0 || H5Dwrite(set.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0, path, name);
}

void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& v, const std::string& path) {
  std::vector<const char*> ptrs;
  for (const auto& s : v) ptrs.push_back(s.c_str());
  hsize_t dims[1] = {hsize_t(v.size())};
  Hdf5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Hdf5Handle space(H5Screate_simple(1, dims, nullptr), H5Sclose);
  Hdf5Handle set(H5Dcreate2(loc, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  check_h5(set.get() >= 0, path, name);
  check_h5(v.empty() || H5Dwrite(set.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) >= 0, path, name);
}

void write_string_attr(hid_t loc, const char* name, const std::string& value, const std::string& path) {
  try {
    write_string_attribute(loc, name, value, name);
  } catch (const Error& e) {
    throw Error(detail::concat("writing ", path, " failed: ", e.what()));
  }
}

}  // namespace wensu::io
