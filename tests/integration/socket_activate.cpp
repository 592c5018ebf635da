// socket_activate: what systemd does for a .socket unit, for tests. Creates listening sockets,
// prints where each listens, puts them at fds 3, 4, ... and execs the program with LISTEN_FDS
// and LISTEN_PID (its own pid, which exec keeps).
//   socket_activate tcp|tcp-any|unix:PATH... -- PROGRAM ARGS...
// tcp binds 127.0.0.1:0, tcp-any 0.0.0.0:0 (for the refusal test; nothing connects to it).
// Prints "socket_activate: fd N 127.0.0.1:PORT" or "socket_activate: fd N unix:PATH" to stderr.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(std::string const& what) {
    std::fprintf(stderr, "socket_activate: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(2);
}

// Returns the socket (at a high fd, out of the way of 3, 4, ...) and prints its address.
int listen_on(std::string const& spec, int target_fd) {
    bool is_unix = spec.rfind("unix:", 0) == 0;
    int fd = ::socket(is_unix ? AF_UNIX : AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    if (is_unix) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        auto path = spec.substr(5);
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind " + spec);
        std::fprintf(stderr, "socket_activate: fd %d %s\n", target_fd, spec.c_str());
    } else {
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(spec == "tcp-any" ? INADDR_ANY : INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind " + spec);
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) die("getsockname");
        char host[INET_ADDRSTRLEN];
        ::inet_ntop(AF_INET, &addr.sin_addr, host, sizeof host);
        std::fprintf(stderr, "socket_activate: fd %d %s:%d\n", target_fd, host,
                     ntohs(addr.sin_port));
    }
    if (::listen(fd, 64) != 0) die("listen " + spec);
    int high = ::fcntl(fd, F_DUPFD, 100);
    if (high < 0) die("fcntl");
    ::close(fd);
    return high;
}

}  // namespace

int main(int argc, char** argv) {
    int sep = 1;
    while (sep < argc && std::string(argv[sep]) != "--") ++sep;
    if (sep == 1 || sep + 1 >= argc) {
        std::fprintf(stderr,
                     "usage: socket_activate tcp|tcp-any|unix:PATH... -- PROGRAM ARGS...\n");
        return 2;
    }
    std::vector<int> sockets;
    for (int i = 1; i < sep; ++i) sockets.push_back(listen_on(argv[i], 3 + i - 1));
    for (std::size_t i = 0; i < sockets.size(); ++i) {
        if (::dup2(sockets[i], 3 + static_cast<int>(i)) < 0) die("dup2");
        ::close(sockets[i]);
    }
    ::setenv("LISTEN_FDS", std::to_string(sockets.size()).c_str(), 1);
    ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    std::fflush(stderr);
    ::execv(argv[sep + 1], argv + sep + 1);
    die(std::string("exec ") + argv[sep + 1]);
}
