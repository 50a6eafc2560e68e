#include "wensu/io/hdf5.h"

#include <cstring>
#include <ctime>

#include "wensu/core/check.h"

namespace wensu::io {

Hdf5Handle file_access_properties() {
  Hdf5Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
#if H5_VERSION_GE(1, 10, 7)
  if (fapl.ok()) H5Pset_file_locking(fapl.get(), true, true);
#endif
  return fapl;
}

std::string read_string_attribute(hid_t obj, const char* name, const std::string& where) {
  Hdf5Handle attr(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  WENSU_CHECK(attr.ok(), "cannot open attribute '", where, "'");
  Hdf5Handle ftype(H5Aget_type(attr.get()), H5Tclose);
  Hdf5Handle space(H5Aget_space(attr.get()), H5Sclose);
  WENSU_CHECK(ftype.ok() && H5Tget_class(ftype.get()) == H5T_STRING, "attribute '", where, "' is not a string");
  WENSU_CHECK(H5Sget_simple_extent_npoints(space.get()) == 1, "attribute '", where, "' is not a single string");
  // The memory type keeps the file's character set: HDF5 does not convert between them.
  if (H5Tis_variable_str(ftype.get()) > 0) {
    Hdf5Handle mtype(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mtype.get(), H5T_VARIABLE);
    H5Tset_cset(mtype.get(), H5Tget_cset(ftype.get()));
    char* s = nullptr;
    WENSU_CHECK(H5Aread(attr.get(), mtype.get(), &s) >= 0, "cannot read attribute '", where, "'");
    std::string out = s ? s : "";
    H5free_memory(s);
    return out;
  }
  std::string buf(H5Tget_size(ftype.get()), '\0');
  WENSU_CHECK(H5Aread(attr.get(), ftype.get(), buf.data()) >= 0, "cannot read attribute '", where, "'");
  if (H5Tget_strpad(ftype.get()) == H5T_STR_SPACEPAD)
    buf.erase(buf.find_last_not_of(' ') + 1);
  else
    buf.resize(std::strlen(buf.c_str()));
  return buf;
}

void write_string_attribute(hid_t obj, const char* name, const std::string& value, const std::string& where) {
  WENSU_CHECK(value.find('\0') == std::string::npos, "attribute '", where, "' contains a NUL byte");
  Hdf5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  Hdf5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  WENSU_CHECK(type.ok() && H5Tset_size(type.get(), H5T_VARIABLE) >= 0 && H5Tset_cset(type.get(), H5T_CSET_UTF8) >= 0 &&
                  space.ok(),
              "cannot make a string type for attribute '", where, "'");
  Hdf5Handle attr(H5Acreate2(obj, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  const char* p = value.c_str();
  WENSU_CHECK(attr.ok() && H5Awrite(attr.get(), type.get(), &p) >= 0, "cannot write attribute '", where, "'");
}

std::string utc_timestamp() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace wensu::io
