// The hostile clients of the hostile-client run; see hostile_attackers.hpp.
#include "hostile_attackers.hpp"

#include "hostile_net.hpp"

#include <fmt/format.h>

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>

namespace agentd::test::hostile {
using namespace std::chrono_literals;

namespace {

long ms_since(clock_type::time_point t0) {
    return static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0).count());
}

std::string first_line(std::string const& s) {
    return s.substr(0, s.find("\r\n"));
}

// `unit_line` repeated to about 64 KiB, so each send hands the kernel a big slice.
std::string repeated(std::string const& unit_line) {
    std::string out;
    while (out.size() < 64 * 1024) out += unit_line;
    return out;
}

std::string rpc_request(target const& t, std::string const& body) {
    return fmt::format(
        "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\n"
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        t.port, t.token, body.size(), body);
}

std::string wait_call(target const& t, int id) {
    return fmt::format(
        R"({{"jsonrpc":"2.0","id":{},"method":"agents_wait","params":{{"session":"{}",)"
        R"("jobs":["{}"],"timeout_ms":60000}}}})",
        id, t.session, t.running_job);
}

// One masked client text frame (RFC 6455 §5.2) carrying `payload`.
std::string ws_frame(std::string const& payload) {
    std::string f;
    f.push_back(static_cast<char>(0x81));
    auto n = payload.size();
    if (n < 126) {
        f.push_back(static_cast<char>(0x80 | n));
    } else if (n < 65536) {
        f.push_back(static_cast<char>(0x80 | 126));
        for (int shift = 8; shift >= 0; shift -= 8) f.push_back(static_cast<char>(n >> shift));
    } else {
        f.push_back(static_cast<char>(0x80 | 127));
        for (int shift = 56; shift >= 0; shift -= 8) f.push_back(static_cast<char>(n >> shift));
    }
    unsigned char const mask[4] = {0x1f, 0x2e, 0x3d, 0x4c};
    f.append(reinterpret_cast<char const*>(mask), 4);
    for (std::size_t i = 0; i < n; ++i)
        f.push_back(static_cast<char>(payload[i] ^ static_cast<char>(mask[i % 4])));
    return f;
}

// Reads the upgrade answer's head; true on 101.
bool read_upgrade(int fd, std::atomic<bool> const& stop, std::string& head) {
    auto deadline = clock_type::now() + 5s;
    while (head.find("\r\n\r\n") == std::string::npos) {
        if (stop.load() || clock_type::now() > deadline) return false;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        char buf[1024];
        auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) return false;
        if (n > 0) head.append(buf, static_cast<std::size_t>(n));
    }
    return head.rfind("HTTP/1.1 101", 0) == 0;
}

}  // namespace

void run_flood(std::string head, std::string unit, std::atomic<bool> const& stop, int port,
               flood_stats& st) {
    while (!stop.load()) {
        auto out = flood_once(port, head, unit, stop);
        if (st.connections++ == 0) st.first_bytes = out.bytes;
        st.max_bytes = std::max(st.max_bytes, out.bytes);
        st.closed_by_daemon += out.closed_by_daemon;
        if (st.first_reply.empty() && !out.reply.empty()) st.first_reply = first_line(out.reply);
        // Paced: the point is what one connection can make the daemon hold, not a SYN storm.
        wait_stop(stop, 100ms);
    }
}

std::string trailer_rpc_head(target const& t) {
    return fmt::format(
        "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n",
        t.port, t.token);
}

std::string trailer_healthz_head(target const& t) {
    return fmt::format(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
        t.port);
}

std::string trailer_unit() {
    return repeated("X-Flood: " + std::string(100, 'a') + "\r\n");
}

std::string extension_head(target const& t) {
    return fmt::format(
        "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2;ext=",
        t.port, t.token);
}

std::string extension_unit() {
    return repeated(std::string(128, 'e'));
}

void run_idle_sockets(target const& t, int count, std::atomic<bool> const& stop, idle_stats& st) {
    struct slot {
        socket_fd fd;
        clock_type::time_point opened;
        clock_type::time_point retry_at;
    };
    std::vector<slot> slots(static_cast<std::size_t>(count));
    std::vector<pollfd> polls;
    std::vector<slot*> polled;
    while (!stop.load()) {
        auto now = clock_type::now();
        polls.clear();
        polled.clear();
        for (auto& s : slots) {
            if (!s.fd.valid() && now >= s.retry_at) {
                s.fd = connect_loopback(t.port);
                s.opened = now;
                if (s.fd.valid()) {
                    ++st.opened;
                } else {
                    ++st.connect_failures;
                    s.retry_at = now + 500ms;
                }
            }
            if (!s.fd.valid()) continue;
            polls.push_back({s.fd.get(), POLLIN, 0});
            polled.push_back(&s);
        }
        if (::poll(polls.data(), polls.size(), 100) <= 0) continue;
        for (std::size_t i = 0; i < polls.size(); ++i) {
            if (!polls[i].revents) continue;
            char buf[512];
            auto n = ::recv(polls[i].fd, buf, sizeof buf, 0);
            if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) continue;
            auto held = ms_since(polled[i]->opened);
            ++st.closed_by_daemon;
            if (held < 100) ++st.refused_at_once;
            st.longest_held_ms = std::max(st.longest_held_ms, held);
            polled[i]->fd.reset();
            // Reopened after a pause, so a daemon that refuses at the cap is not hammered.
            polled[i]->retry_at = clock_type::now() + 500ms;
        }
    }
    for (auto const& s : slots) {
        if (!s.fd.valid()) continue;
        ++st.open_at_end;
        st.longest_held_ms = std::max(st.longest_held_ms, ms_since(s.opened));
    }
}

void run_abandoned_waits(target const& t, std::atomic<bool> const& stop, abandon_stats& st) {
    for (int id = 1; !stop.load(); ++id) {
        auto s = connect_loopback(t.port);
        if (!s.valid()) {
            ++st.connect_failures;
        } else if (send_all(s.get(), rpc_request(t, wait_call(t, id)), stop)) {
            ++st.sent;
        }
        s.reset();  // gone without reading the answer
        wait_stop(stop, 100ms);
    }
}

void run_ws_read_ahead(target const& t, int frames, std::atomic<bool> const& stop, ws_stats& st) {
    auto upgrade = fmt::format(
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Authorization: Bearer {}\r\n\r\n",
        t.port, t.token);
    auto wait_frame = ws_frame(wait_call(t, 1));
    // A cancel runs alone (it does not join the wait), so it queues behind it: valid and cheap
    // (no such job), padded with JSON whitespace to exactly 1 MiB.
    auto call = fmt::format(
        R"({{"jsonrpc":"2.0","id":2,"method":"agents_cancel","params":{{"session":"{}",)"
        R"("jobs":["no-such-job"]}}}})",
        t.session);
    call.resize(std::size_t{1} << 20, ' ');
    auto big_frame = ws_frame(call);
    while (!stop.load()) {
        ++st.connections;
        auto s = connect_loopback(t.port);
        std::string head;
        if (!s.valid() || !send_all(s.get(), upgrade, stop) || !read_upgrade(s.get(), stop, head)) {
            if (stop.load()) break;
            ++st.upgrade_failures;
            if (st.first_failure.empty())
                st.first_failure = !s.valid()     ? "connect failed"
                                   : head.empty() ? "closed before answering"
                                                  : first_line(head);
            wait_stop(stop, 200ms);
            continue;
        }
        auto w = pump(s.get(), wait_frame, 1, stop);
        auto out = w.closed_by_daemon ? w : pump(s.get(), big_frame, frames, stop);
        st.bytes += out.bytes;
        st.frames_sent += static_cast<long>(out.bytes / big_frame.size());
        st.closed_by_daemon += out.closed_by_daemon;
        s.reset();
        wait_stop(stop, 200ms);
    }
}

}  // namespace agentd::test::hostile
