// A single pass over one opencode event frame that keeps only the few string fields the common
// events carry (type, session, part, delta, status, usage…), with no JSON tree: most of the event
// stream (text deltas above all) needs nothing else. parse_event builds its event from this, or
// hands frames with more structure (tools, requests, usage) to the full parse.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace agentd::jobs::upstream::opencode {

// The fields of one event object (the frame itself on /event, its payload on /global/event).
// A field is empty when missing or not a string; `*_object` says whether an object was there.
struct scanned_event {
    std::string type;
    bool properties_object = false;
    std::string session;  // properties.sessionID
    std::string part_id;  // properties.partID
    std::string field;    // properties.field
    std::string delta;    // properties.delta
    bool info_object = false;
    std::string info_role;            // properties.info.role
    std::string info_id;              // properties.info.id
    std::string info_session;         // properties.info.sessionID
    bool info_completed = false;      // properties.info.time.completed is a number
    bool info_summary_diffs = false;  // properties.info.summary.diffs is an array
    // properties.info.tokens.{input,output,reasoning} and .cost: 0 when missing or not numbers
    // (a real number's integer part for the token counts)
    std::int64_t tokens_input = 0;
    std::int64_t tokens_output = 0;
    std::int64_t tokens_reasoning = 0;
    double cost = 0;
    bool status_object = false;
    std::string status_type;  // properties.status.type
    bool part_object = false;
    std::string part_type;     // properties.part.type
    std::string part_session;  // properties.part.sessionID
    std::string part_key;      // properties.part.id
    std::string part_message;  // properties.part.messageID
    std::string part_text;     // properties.part.text (a text part's, whole)
};

struct scanned_frame {
    bool wrapped = false;   // a /global/event frame: an object payload
    std::string directory;  // the frame's, when wrapped
    scanned_event event;
};

// nullopt when `data` is not one JSON object (bad syntax, nesting past 64, trailing bytes).
// Where a key repeats, the last one counts, as in a parsed tree.
std::optional<scanned_frame> scan_event(std::string_view data);

}  // namespace agentd::jobs::upstream::opencode
