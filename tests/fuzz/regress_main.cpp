// Replays fuzz inputs without libFuzzer, so the normal and sanitizer builds (GCC) run the seed
// corpus and every saved crash as a regression test: `<target>_regress FILE|DIR...`.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size);

namespace {

std::size_t run_file(std::filesystem::path const& p) {
    std::ifstream in(p, std::ios::binary);
    std::vector<char> bytes{std::istreambuf_iterator<char>(in), {}};
    LLVMFuzzerTestOneInput(reinterpret_cast<std::uint8_t const*>(bytes.data()), bytes.size());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t n = 0;
    for (int i = 1; i < argc; ++i) {
        std::filesystem::path p(argv[i]);
        if (!std::filesystem::is_directory(p)) {
            n += run_file(p);
            continue;
        }
        for (auto const& e : std::filesystem::recursive_directory_iterator(p))
            if (e.is_regular_file()) n += run_file(e.path());
    }
    std::cout << "replayed " << n << " inputs\n";
    return n == 0 ? 1 : 0;  // an empty corpus would make the test vacuous
}
