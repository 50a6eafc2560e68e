// Small HDF5 (C API) helpers shared by the files that read and write HDF5: checkpoints, fold
// shards, embeddings and distograms (io/hdf5_write.h has the writers of result files).
#pragma once
#include <hdf5.h>

#include <string>
#include <utility>

namespace wensu::io {

// HDF5 prints its whole error stack to stderr by default; users should see only our one line.
// The previous handler is restored so other HDF5 code in the process keeps its own setting.
class QuietHdf5 {
 public:
  QuietHdf5() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietHdf5() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  QuietHdf5(const QuietHdf5&) = delete;
  QuietHdf5& operator=(const QuietHdf5&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// Owns one HDF5 identifier; closes it when it goes out of scope (also during unwinding).
// reset() closes it early and returns the close call's status (< 0: failed, e.g. a full disk).
class Hdf5Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Hdf5Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  Hdf5Handle(Hdf5Handle&& o) noexcept : id_(std::exchange(o.id_, -1)), close_(o.close_) {}
  Hdf5Handle& operator=(Hdf5Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, -1);
      close_ = o.close_;
    }
    return *this;
  }
  Hdf5Handle(const Hdf5Handle&) = delete;
  Hdf5Handle& operator=(const Hdf5Handle&) = delete;
  ~Hdf5Handle() { reset(); }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }
  herr_t reset() { return id_ >= 0 ? close_(std::exchange(id_, -1)) : 0; }

 private:
  hid_t id_;
  Closer close_;
};

// File access properties for opening and creating files: HDF5's file locking is kept, but
// filesystems without locks (NFS, Lustre) do not make opening fail with "unable to lock file".
Hdf5Handle file_access_properties();

// The value of obj's scalar string attribute `name`, fixed or variable length (files written by
// other tools, such as h5py, hold either), in the file's character set. Throws wensu::Error
// naming the attribute as `where` ("attribute 'meta/x' is not a string"); callers add the file.
std::string read_string_attribute(hid_t obj, const char* name, const std::string& where);

// Writes obj's attribute `name` as one variable-length UTF-8 string, so long JSON configs do not
// run into the 64 KiB object-header limit of fixed-length attributes. Throws like the reader
// (a value holding a NUL byte is refused: it would be cut there).
void write_string_attribute(hid_t obj, const char* name, const std::string& value, const std::string& where);

// The time now in UTC, as "2026-11-29T10:00:00Z": the "created" attribute of the files we write.
std::string utc_timestamp();

}  // namespace wensu::io
