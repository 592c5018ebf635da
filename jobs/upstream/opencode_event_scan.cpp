// scan_event: a boost::json::basic_parser handler that follows the key path of each value and
// keeps the strings parse_event's common cases read. No tree and no allocation per value; see
// opencode_event_scan.hpp.
#include "jobs/upstream/opencode_event_scan.hpp"

#include <boost/json/basic_parser_impl.hpp>

#include <array>
#include <cstdint>
#include <limits>

namespace agentd::jobs::upstream::opencode {
namespace {

namespace json = boost::json;
using boost::system::error_code;

constexpr std::size_t max_depth = 64;  // as parse_json

// The objects whose fields matter; everything under any other value is skipped.
enum class node : std::uint8_t { skip, root, payload, properties, info, status, part };

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
        value(false, false);
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
        if (!in_key_) key_.clear();
        in_key_ = true;
        key_.append(s);
        return true;
    }
    bool on_key(std::string_view s, std::size_t n, error_code& ec) {
        on_key_part(s, n, ec);
        in_key_ = false;
        return true;
    }
    bool on_number_part(std::string_view, error_code&) { return true; }
    bool on_int64(std::int64_t, std::string_view, error_code&) { return scalar(); }
    bool on_uint64(std::uint64_t, std::string_view, error_code&) { return scalar(); }
    bool on_double(double, std::string_view, error_code&) { return scalar(); }
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

    // A value of key_ in the current object begins: resets what it replaces (the last of a
    // repeated key counts), points target_ at the string it fills, and returns the node it is
    // when it is an object.
    node value(bool object, bool string) {
        target_ = nullptr;
        if (depth_ == 0) return node::skip;
        auto const& at = top();
        auto& ev = at.wrapped ? frame.event : bare;
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
        switch (at.what) {
            case node::root:
                if (key_ == "directory") return field(frame.directory);
                if (key_ == "payload")
                    return child(node::payload, frame.wrapped, [&] { frame.event = {}; });
                [[fallthrough]];
            case node::payload:
                if (key_ == "type") return field(ev.type);
                if (key_ == "properties")
                    return child(node::properties, ev.properties_object, [&] {
                        auto type = std::move(ev.type);
                        ev = {};
                        ev.type = std::move(type);
                    });
                return node::skip;
            case node::properties:
                if (key_ == "sessionID") return field(ev.session);
                if (key_ == "partID") return field(ev.part_id);
                if (key_ == "field") return field(ev.field);
                if (key_ == "delta") return field(ev.delta);
                if (key_ == "info")
                    return child(node::info, ev.info_object, [&] {
                        ev.info_role.clear();
                        ev.info_id.clear();
                        ev.info_session.clear();
                    });
                if (key_ == "status")
                    return child(node::status, ev.status_object, [&] { ev.status_type.clear(); });
                if (key_ == "part")
                    return child(node::part, ev.part_object, [&] {
                        ev.part_type.clear();
                        ev.part_session.clear();
                        ev.part_key.clear();
                    });
                return node::skip;
            case node::info:
                if (key_ == "role") return field(ev.info_role);
                if (key_ == "id") return field(ev.info_id);
                if (key_ == "sessionID") return field(ev.info_session);
                return node::skip;
            case node::status:
                if (key_ == "type") return field(ev.status_type);
                return node::skip;
            case node::part:
                if (key_ == "type") return field(ev.part_type);
                if (key_ == "sessionID") return field(ev.part_session);
                if (key_ == "id") return field(ev.part_key);
                return node::skip;
            case node::skip:
                return node::skip;
        }
        return node::skip;
    }

    std::array<level, max_depth + 1> stack_{};
    std::size_t depth_ = 0;
    std::string key_;
    bool in_key_ = false;
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
