// The live board and its renderings. Elapsed times of unfinished jobs advance locally between
// pushes (the daemon sends a view only when the state changes), from the elapsed_ms it sent.
#include "live_view.hpp"

#include "exit_codes.hpp"
#include "requests.hpp"
#include "rpc.hpp"

#include "protocol/job_view.hpp"

#include <fmt/core.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>

namespace agentctl {
namespace json = boost::json;
namespace protocol = agentd::protocol;
namespace {

constexpr std::array<char, 4> spinner{'|', '/', '-', '\\'};

std::string state_of(json::object const& view) {
    auto const* state = view.if_contains("state");
    return state && state->is_string() ? std::string(state->get_string()) : std::string{};
}

// What a line shows of a job besides its state: the state, the tool step and the pending
// requests' ids (a new step or request is news even when the state stays).
std::string news_of(json::object const& view) {
    auto text = state_of(view) + "\n" + activity_text(view);
    for (auto const& r : requests_of(view)) text += "\n" + json::serialize(r.request.at("id"));
    return text;
}

// The end of a job's line: description and (`with_error`) error, then what it waits for, else
// its tool step.
std::string details(json::object const& view, bool with_error) {
    auto job = read_job(view);
    std::string text;
    auto add = [&text](std::string const& part) {
        if (!part.empty()) text += "  " + part;
    };
    add(job.description);
    if (with_error) add(job.error);
    auto requests = requests_of(view);
    if (!requests.empty()) {
        auto what = "needs input: " + request_summary(requests.front().request);
        if (requests.size() > 1) what += fmt::format(" (+{} more)", requests.size() - 1);
        add(what);
    } else if (!protocol::is_terminal(job.state)) {
        add(job.activity);
    }
    return text;
}

}  // namespace

bool job_board::update(json::value const& job, live_clock::time_point now) {
    auto const* view = job.if_object();
    auto const* id = view ? view->if_contains("id") : nullptr;
    if (id == nullptr || !id->is_string()) return false;
    std::string key(id->get_string());
    auto it = std::find_if(jobs_.begin(), jobs_.end(), [&](entry const& e) { return e.id == key; });
    if (it == jobs_.end()) {
        jobs_.push_back({key, *view, now});
        order_.push_back(key);
        return true;
    }
    bool changed = news_of(it->view) != news_of(*view);
    it->view = *view;
    it->seen = now;
    return changed;
}

void job_board::take_snapshot(json::object const& result, live_clock::time_point now) {
    auto const* jobs = result.if_contains("jobs");
    if (jobs == nullptr || !jobs->is_array()) return;
    auto const& items = jobs->get_array();
    for (auto it = items.rbegin(); it != items.rend(); ++it) {  // newest first: oldest in first
        auto const& item = *it;
        auto const* entry = item.if_object();
        auto const* job = entry ? entry->if_contains("job") : nullptr;
        auto const& view = job ? *job : item;
        auto const* id = view.is_object() ? view.get_object().if_contains("id") : nullptr;
        if (id && id->is_string() && find(id->get_string()) == nullptr) update(view, now);
    }
}

json::object const* job_board::find(std::string_view id) const {
    auto it = std::find_if(jobs_.begin(), jobs_.end(), [&](entry const& e) { return e.id == id; });
    return it == jobs_.end() ? nullptr : &it->view;
}

json::object job_board::at(std::string_view id, live_clock::time_point now) const {
    auto it = std::find_if(jobs_.begin(), jobs_.end(), [&](entry const& e) { return e.id == id; });
    if (it == jobs_.end()) return json::object{{"id", id}, {"state", protocol::not_found_state}};
    auto view = it->view;
    auto const* elapsed = view.if_contains("elapsed_ms");
    if (!protocol::is_terminal(state_of(view)) && elapsed && elapsed->is_int64()) {
        auto since = std::chrono::duration_cast<std::chrono::milliseconds>(now - it->seen);
        view["elapsed_ms"] = elapsed->get_int64() + since.count();
    }
    return view;
}

bool job_board::terminal(std::string_view id) const {
    auto const* view = find(id);
    return view == nullptr || protocol::is_terminal(state_of(*view));
}

bool job_board::idle() const {
    return std::all_of(jobs_.begin(), jobs_.end(),
                       [](entry const& e) { return protocol::is_terminal(state_of(e.view)); });
}

std::string board_table(job_board const& board, live_clock::time_point now, std::size_t columns) {
    json::array jobs;
    auto const& ids = board.ids();
    for (auto it = ids.rbegin(); it != ids.rend(); ++it) jobs.push_back(board.at(*it, now));
    return render_result(command_kind::status, json::object{{"jobs", std::move(jobs)}}, columns)
        .out;
}

std::vector<std::string> progress_lines(job_board const& board, std::vector<std::string> const& ids,
                                        live_clock::time_point now, std::size_t frame,
                                        std::size_t columns) {
    std::vector<std::string> lines;
    for (auto const& id : ids) {
        auto view = board.at(id, now);
        auto job = read_job(view);
        // A waiting job shows `?`, not a spinner: it is not moving until someone answers.
        char mark = job.state == "waiting"              ? '?'
                    : !protocol::is_terminal(job.state) ? spinner[frame % spinner.size()]
                    : is_completed(job.state)           ? '+'
                                                        : 'x';
        lines.push_back(fmt::format("{} {}  {:<11} {:>7}", mark, job.id, job.state,
                                    format_elapsed(job.elapsed_ms)) +
                        details(view, false));
        for (auto& line : error_lines(job.error, columns)) lines.push_back(std::move(line));
    }
    return lines;
}

std::string event_line(json::object const& view) {
    auto job = read_job(view);
    return fmt::format("{}  {}  {}", job.id, job.state, format_elapsed(job.elapsed_ms)) +
           details(view, true) + "\n";
}

std::string fit_width(std::string_view line, std::size_t columns) {
    std::size_t chars = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
        bool starts_char = (static_cast<unsigned char>(line[i]) & 0xC0) != 0x80;
        if (starts_char && ++chars >= columns) return std::string(line.substr(0, i));
    }
    return std::string(line);
}

std::string redraw(std::size_t previous, std::vector<std::string> const& lines) {
    // ESC[nF: to the start of the line n lines up; ESC[2K: erase the line; ESC[J: erase below.
    std::string out = previous > 0 ? fmt::format("\x1b[{}F", previous) : std::string{};
    for (auto const& line : lines) out += "\x1b[2K" + line + "\n";
    if (lines.size() < previous) out += "\x1b[J";
    return out;
}

ws_message classify(std::string_view text) {
    boost::system::error_code ec;
    auto doc = json::parse(text, ec);
    auto const* msg = ec ? nullptr : doc.if_object();
    if (msg == nullptr) throw transport_error("a WebSocket message is not JSON-RPC");
    ws_message out;
    if (auto const* method = msg->if_contains("method")) {
        auto const* params = msg->if_contains("params");
        auto const* job =
            params && params->is_object() ? params->get_object().if_contains("job") : nullptr;
        if (*method == "agents_event" && job && job->is_object()) {
            out.what = ws_message::kind::event;
            out.job = job->get_object();
        }
        return out;  // other requests (approval/request) are not for a watcher
    }
    auto decoded = decode_response(text);
    if (auto const* error = std::get_if<rpc_error>(&decoded)) throw rpc_failure(describe(*error));
    auto const* id = msg->if_contains("id");
    auto const* result = std::get<json::value>(decoded).if_object();
    out.what = ws_message::kind::response;
    out.id = id && id->is_int64() ? id->get_int64() : 0;
    if (result) out.result = *result;
    return out;
}

}  // namespace agentctl
