// scan_event: a boost::json::basic_parser handler that follows the key path of each value and
// keeps the strings parse_event's common cases read. No tree and no allocation per value; see
// opencode_event_scan.hpp.
#include "jobs/upstream/opencode_event_scan.hpp"

#include <boost/json/basic_parser_impl.hpp>

#include <array>
#include <cstdint>
#include <limits>
#include <utility>

namespace agentd::jobs::upstream::opencode {
namespace {

namespace json = boost::json;
using boost::system::error_code;

constexpr std::size_t max_depth = 64;  // as parse_json

// The objects whose fields matter; everything under any other value is skipped.
enum class node : std::uint8_t {
    skip,
    root,
    payload,
    properties,
    info,
    tokens,
    time,
    summary,
    status,
    part
};

// What the value of the key just read fills, by the object it is in.
enum class slot : std::uint8_t {
    none,
    directory,
    payload,
    type,
    properties,
    session,
    part_id,
    field,
    delta,
    info,
    status,
    part,
    info_role,
    info_id,
    info_session,
    tokens,
    cost,
    tokens_input,
    tokens_output,
    tokens_reasoning,
    time,
    time_completed,
    summary,
    summary_diffs,
    status_type,
    part_type,
    part_session,
    part_key,
    part_message,
    part_text
};

// Keys are classified once, when read: no key is copied unless it came in pieces.
slot classify(node in, std::string_view key) {
    switch (in) {
        case node::root:
            if (key == "directory") return slot::directory;
            if (key == "payload") return slot::payload;
            [[fallthrough]];
        case node::payload:
            if (key == "type") return slot::type;
            if (key == "properties") return slot::properties;
            return slot::none;
        case node::properties:
            if (key == "sessionID") return slot::session;
            if (key == "partID") return slot::part_id;
            if (key == "field") return slot::field;
            if (key == "delta") return slot::delta;
            if (key == "info") return slot::info;
            if (key == "status") return slot::status;
            if (key == "part") return slot::part;
            return slot::none;
        case node::info:
            if (key == "role") return slot::info_role;
            if (key == "id") return slot::info_id;
            if (key == "sessionID") return slot::info_session;
            if (key == "tokens") return slot::tokens;
            if (key == "cost") return slot::cost;
            if (key == "time") return slot::time;
            if (key == "summary") return slot::summary;
            return slot::none;
        case node::tokens:
            if (key == "input") return slot::tokens_input;
            if (key == "output") return slot::tokens_output;
            if (key == "reasoning") return slot::tokens_reasoning;
            return slot::none;
        case node::time:
            return key == "completed" ? slot::time_completed : slot::none;
        case node::summary:
            return key == "diffs" ? slot::summary_diffs : slot::none;
        case node::status:
            return key == "type" ? slot::status_type : slot::none;
        case node::part:
            if (key == "type") return slot::part_type;
            if (key == "sessionID") return slot::part_session;
            if (key == "id") return slot::part_key;
            if (key == "messageID") return slot::part_message;
            if (key == "text") return slot::part_text;
            return slot::none;
        case node::skip:
            return slot::none;
    }
    return slot::none;
}

class scan_handler {
  public:
    static constexpr std::size_t max_object_size = std::numeric_limits<std::size_t>::max();
    static constexpr std::size_t max_array_size = std::numeric_limits<std::size_t>::max();
    static constexpr std::size_t max_key_size = std::numeric_limits<std::size_t>::max();
    static constexpr std::size_t max_string_size = std::numeric_limits<std::size_t>::max();

    bool root_object = false;
    scanned_frame frame;
    scanned_event bare;  // the fields of the frame itself, as an unwrapped event

    bool on_document_begin(error_code&) { return true; }
    bool on_document_end(error_code&) { return true; }
    bool on_array_begin(error_code&) {
        bool diffs = slot_ == slot::summary_diffs;
        value(false, false);
        if (diffs) event().info_summary_diffs = true;
        return push(node::skip, false);
    }
    bool on_array_end(std::size_t, error_code&) { return pop(); }
    bool on_object_begin(error_code&) {
        if (depth_ == 0) {
            root_object = true;
            return push(node::root, false);
        }
        auto child = value(true, false);
        return push(child, child == node::payload || top().wrapped);
    }
    bool on_object_end(std::size_t, error_code&) { return pop(); }
    bool on_string_part(std::string_view s, std::size_t, error_code&) {
        if (!in_string_) {
            in_string_ = true;
            value(false, true);
        }
        if (target_) target_->append(s);
        return true;
    }
    bool on_string(std::string_view s, std::size_t n, error_code& ec) {
        on_string_part(s, n, ec);
        in_string_ = false;
        target_ = nullptr;
        return true;
    }
    bool on_key_part(std::string_view s, std::size_t, error_code&) {
        key_.append(s);
        return true;
    }
    bool on_key(std::string_view s, std::size_t, error_code&) {
        if (key_.empty()) {
            slot_ = classify(top().what, s);
        } else {
            key_.append(s);
            slot_ = classify(top().what, key_);
            key_.clear();
        }
        return true;
    }
    bool on_number_part(std::string_view, error_code&) { return true; }
    bool on_int64(std::int64_t i, std::string_view, error_code&) {
        return number(static_cast<double>(i), i);
    }
    bool on_uint64(std::uint64_t u, std::string_view, error_code&) {
        return number(static_cast<double>(u), static_cast<std::int64_t>(u));
    }
    bool on_double(double d, std::string_view, error_code&) {
        return number(d, static_cast<std::int64_t>(d));
    }
    bool on_bool(bool, error_code&) { return scalar(); }
    bool on_null(error_code&) { return scalar(); }
    bool on_comment_part(std::string_view, error_code&) { return true; }
    bool on_comment(std::string_view, error_code&) { return true; }

  private:
    struct level {
        node what = node::skip;
        bool wrapped = false;  // inside the payload of a /global/event frame
    };

    level const& top() const { return stack_[depth_ - 1]; }
    // The event the value being read belongs to.
    scanned_event& event() { return depth_ > 0 && top().wrapped ? frame.event : bare; }
    bool push(node what, bool wrapped) {
        stack_[depth_++] = {what, wrapped};
        return true;
    }
    bool pop() {
        --depth_;
        return true;
    }
    bool scalar() {
        value(false, false);
        return true;
    }
    // As the tree read takes numbers: a count as an integer, the cost as a real.
    bool number(double real, std::int64_t integer) {
        auto what = slot_;
        value(false, false);
        auto& ev = event();
        switch (what) {
            case slot::time_completed:
                ev.info_completed = true;
                break;
            case slot::tokens_input:
                ev.tokens_input = integer;
                break;
            case slot::tokens_output:
                ev.tokens_output = integer;
                break;
            case slot::tokens_reasoning:
                ev.tokens_reasoning = integer;
                break;
            case slot::cost:
                ev.cost = real;
                break;
            default:
                break;
        }
        return true;
    }

    // A value of the key just read begins: resets what it replaces (the last of a repeated key
    // counts), points target_ at the string it fills, and returns the node it is when it is an
    // object.
    node value(bool object, bool string) {
        target_ = nullptr;
        auto what = std::exchange(slot_, slot::none);
        if (what == slot::none) return node::skip;
        auto& ev = top().wrapped ? frame.event : bare;
        auto field = [&](std::string& s) {
            s.clear();
            if (string) target_ = &s;
            return node::skip;
        };
        auto child = [&](node n, bool& is_object, auto reset) {
            reset();
            is_object = object;
            return object ? n : node::skip;
        };
        switch (what) {
            case slot::directory:
                return field(frame.directory);
            case slot::payload:
                return child(node::payload, frame.wrapped, [&] { frame.event = {}; });
            case slot::type:
                return field(ev.type);
            case slot::properties:
                return child(node::properties, ev.properties_object, [&] {
                    auto type = std::move(ev.type);
                    ev = {};
                    ev.type = std::move(type);
                });
            case slot::session:
                return field(ev.session);
            case slot::part_id:
                return field(ev.part_id);
            case slot::field:
                return field(ev.field);
            case slot::delta:
                return field(ev.delta);
            case slot::info:
                return child(node::info, ev.info_object, [&] {
                    ev.info_role.clear();
                    ev.info_id.clear();
                    ev.info_session.clear();
                    ev.info_completed = ev.info_summary_diffs = false;
                    ev.tokens_input = ev.tokens_output = ev.tokens_reasoning = 0;
                    ev.cost = 0;
                });
            case slot::tokens:
                ev.tokens_input = ev.tokens_output = ev.tokens_reasoning = 0;
                return object ? node::tokens : node::skip;
            case slot::cost:
                ev.cost = 0;
                return node::skip;
            case slot::time:
                ev.info_completed = false;
                return object ? node::time : node::skip;
            case slot::time_completed:
                ev.info_completed = false;
                return node::skip;
            case slot::summary:
                ev.info_summary_diffs = false;
                return object ? node::summary : node::skip;
            case slot::summary_diffs:
                ev.info_summary_diffs = false;
                return node::skip;
            case slot::tokens_input:
                ev.tokens_input = 0;
                return node::skip;
            case slot::tokens_output:
                ev.tokens_output = 0;
                return node::skip;
            case slot::tokens_reasoning:
                ev.tokens_reasoning = 0;
                return node::skip;
            case slot::status:
                return child(node::status, ev.status_object, [&] { ev.status_type.clear(); });
            case slot::part:
                return child(node::part, ev.part_object, [&] {
                    ev.part_type.clear();
                    ev.part_session.clear();
                    ev.part_key.clear();
                    ev.part_message.clear();
                    ev.part_text.clear();
                });
            case slot::info_role:
                return field(ev.info_role);
            case slot::info_id:
                return field(ev.info_id);
            case slot::info_session:
                return field(ev.info_session);
            case slot::status_type:
                return field(ev.status_type);
            case slot::part_type:
                return field(ev.part_type);
            case slot::part_session:
                return field(ev.part_session);
            case slot::part_key:
                return field(ev.part_key);
            case slot::part_message:
                return field(ev.part_message);
            case slot::part_text:
                return field(ev.part_text);
            case slot::none:
                break;
        }
        return node::skip;
    }

    std::array<level, max_depth + 1> stack_{};
    std::size_t depth_ = 0;
    slot slot_ = slot::none;
    std::string key_;  // a key that came in pieces (escapes), until its last one
    bool in_string_ = false;
    std::string* target_ = nullptr;
};

bool only_space(std::string_view s) {
    return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

}  // namespace

std::optional<scanned_frame> scan_event(std::string_view data) {
    json::parse_options opts;
    opts.max_depth = max_depth;
    json::basic_parser<scan_handler> p(opts);
    error_code ec;
    auto n = p.write_some(false, data.data(), data.size(), ec);
    if (ec || !p.done() || !only_space(data.substr(n))) return std::nullopt;
    auto& h = p.handler();
    if (!h.root_object) return std::nullopt;
    if (!h.frame.wrapped) {
        h.frame.directory.clear();
        h.frame.event = std::move(h.bare);
    }
    return std::move(h.frame);
}

}  // namespace agentd::jobs::upstream::opencode
