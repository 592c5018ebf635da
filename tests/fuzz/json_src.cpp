// Boost.JSON compiled into the fuzz targets (instead of Debian's uninstrumented shared library),
// so coverage feedback reaches the JSON parser.
#include <boost/json/src.hpp>
