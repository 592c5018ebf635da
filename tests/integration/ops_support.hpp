// Helpers of the operations tests (unix listeners, systemd, the .deb): a temp dir and raw HTTP
// over a unix socket.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

namespace agentd::test {

// A fresh directory under /tmp (short: unix socket paths have ~100 bytes), removed at the end.
class temp_dir {
  public:
    temp_dir();
    ~temp_dir();
    temp_dir(temp_dir const&) = delete;
    temp_dir& operator=(temp_dir const&) = delete;
    std::filesystem::path const& path() const { return path_; }
    std::string operator/(std::string const& name) const { return (path_ / name).string(); }

  private:
    std::filesystem::path path_;
};

// Sends `request` (a whole HTTP/1.1 request) to the unix socket at `socket_path` and returns
// everything read until the server closes, or until what was read contains `until` when given;
// throws std::runtime_error when it cannot connect or that does not happen within `timeout`.
std::string unix_http(std::string const& socket_path, std::string const& request,
                      std::string const& until = {},
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

// The status code of a raw HTTP response, 0 when there is none.
int status_of(std::string const& response);

// A GET of `target` with Host: localhost and, when given, the bearer token.
std::string get_request(std::string const& target, std::string const& token = {});

// A JSON POST of `body` to `target`, with Host: localhost and the bearer token when given.
std::string post_request(std::string const& target, std::string const& body,
                         std::string const& token);

// An upstream URL nothing is ever sent to: these tests start no job.
inline constexpr char const* idle_upstream = "http://127.0.0.1:9";

}  // namespace agentd::test
