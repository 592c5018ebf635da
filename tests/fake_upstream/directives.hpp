// Per-request fault injection for the fake OpenCode server: `[[fake key=value ...]]` blocks in
// prompt text or session titles. Tests pick latency and failures through the request itself, so
// one server can serve many test cases at once without global switches.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fake {

enum class fault {
    none,
    close,
    reset,
    hang,
    stall,
    http_500,
    http_404,
    http_400,
    http_503,
    garbage,
    wrong_shape,
    error,
    slow_headers,
    // Hostile replies (issue #14): a chunked body whose trailer never ends, a chunk extension
    // that never ends, a reset right after the request was read (no response byte), a session
    // reply of 128 KiB, a session id that is not one.
    endless_trailer,
    huge_extension,
    early_reset,
    too_big,
    bad_id,
};

std::optional<fault> parse_fault(std::string_view name);
std::string_view fault_name(fault f);

// Keys seen in the directive blocks of one text; unset keys fall back to server defaults.
//
// Timing and faults: latency_ms=N chunks=N output_bytes=N fault=F create_latency_ms=N
// create_fault=F (F as in parse_fault).
//
// Agentic turns (issue #16), emitted in the event shapes of `opencode serve` 1.18.33. Text values
// cannot hold a space or `]`, so in them `_` stands for a space and `%XX` for any byte (%5F is a
// `_`, %20 a space, %5D a `]`); `|` separates list items. A turn runs its parts in this fixed
// order, then streams its text:
//   1. tool=NAME [steps=N] [tool_title=T] [tool_output=T] [tool_ms=N] [tool_fail=1]:
//      N (default 1) tool steps, each a tool part pending -> running {input:{command:T}} ->
//      running {metadata:{output}} after tool_ms/2 -> completed {output, metadata:{output,
//      exit:0, truncated:false}, title:T} after tool_ms (tool_fail=1: error {error:output}).
//      T defaults to "echo ok"; the output to "ok" (tool_fail: "fake tool failed"). Each step
//      adds the line "tool said: <output>" (tool_fail: "tool failed: <output>") to the text.
//   2. permission=NAME [patterns=P1|P2] [tool_output=T]: a tool part NAME running with
//      input.command = the patterns joined by " && " (default "echo permitted") and
//      permission.asked; the turn waits for POST /permission/{id}/reply. once/always: the part
//      completes with the tool output and the text gets "permission once: <output>" (or
//      always); reject with a message: the part errors, the text gets "permission rejected:
//      <message>"; reject without one: the part errors and the turn ends with no text
//      (finish "tool-calls"). After "always", a later ask in the session whose `always`
//      patterns (each pattern's first word + " *") were all allowed so is skipped: the tool
//      runs unasked and the text gets "permission always: <output>".
//   3. question=A|B|C [multiple=1] [question_text=T] [header=T]: a `question` tool part and
//      question.asked (text default "Which colour?", header "Colour", option descriptions
//      "Answer A"); the turn waits for POST /question/{id}/reply, then the text gets
//      "answered: a,b" (one answer's labels joined with `,`), or /reject: the part errors "The
//      user dismissed this question" and the turn ends with no text.
//   0. usage_steps=N [step_cost=X] [step_tokens=N] [step_ms=N] (before 1-3): N billed LLM steps,
//      each an assistant message of its own (parentID the user message, stored before the
//      turn's final message) as the real server makes one per step: message.updated with cost 0,
//      after step_ms/2 again with half the cost and tokens, after step_ms with all of them
//      (cost X, default 0.1; tokens input N, output N, reasoning 0, default 100), time.completed
//      and finish "tool-calls". An abort stops the steps. The final message keeps its own usage.
//   silent_ms=N: the turn publishes nothing for N ms right after its first tool part is
//      running, or after its step-start and empty text parts when it has no tool part.
//   write=FILE [write_text=L1|L2]: as the turn begins, FILE (relative, inside the session's
//      directory) is written with the lines L1, L2 (default "written by the fake"), each ending
//      in a newline. Then, as the real server after a step that changed files, a `patch` part
//      of the assistant message, and the user message's diff summary computed in the
//      background: session.diff as it begins and, summary_ms=N (default 0, at most 5000) later,
//      the user message.updated with summary.diffs as it ends (maybe after the reply). Only
//      from then on does GET /session/{id}/diff?messageID=<the turn's user message> show the
//      file, diffed by git against HEAD (worktrees.hpp).
// With any of 1-3 the text is these lines joined by "\n" (output_bytes still wins); the text
// part appears only after them and streams over latency_ms as usual. An abort ends a waiting
// turn: its pending request leaves the lists at once, an unfinished tool part errors "Tool
// execution aborted" and the reply carries MessageAbortedError. GET /permission and GET
// /question list the requests of one instance (?directory=, else the server's "/fake"; all with
// --unscoped-events); replies find a request whatever the directory. Tests can wait on the
// counters permissions_asked and questions_asked, and GET /_fake/calls lists the method, path
// and ?directory= of the last 1000 OpenCode calls.
struct directives {
    std::optional<std::int64_t> latency_ms;
    std::optional<std::int64_t> chunks;
    std::optional<std::int64_t> output_bytes;
    std::optional<fault> prompt_fault;
    std::optional<std::int64_t> create_latency_ms;
    std::optional<fault> create_fault;

    std::optional<std::string> tool;
    std::optional<std::int64_t> steps;
    std::optional<std::string> tool_title;
    std::optional<std::string> tool_output;
    std::optional<std::int64_t> tool_ms;
    bool tool_fail = false;
    std::optional<std::string> permission;
    std::vector<std::string> patterns;
    std::vector<std::string> question;
    bool multiple = false;
    std::optional<std::string> question_text;
    std::optional<std::string> header;
    std::optional<std::int64_t> silent_ms;
    std::optional<std::int64_t> usage_steps;
    std::optional<double> step_cost;
    std::optional<std::int64_t> step_tokens;
    std::optional<std::int64_t> step_ms;
    std::optional<std::string> write;
    std::vector<std::string> write_text;
    std::optional<std::int64_t> summary_ms;
};

// A directive text value: `_` becomes a space and `%XX` the byte XX.
std::string directive_text(std::string_view value);

// Returns `text` without its directive blocks and merges their keys into `out` (a later block
// wins). Throws std::invalid_argument, with a message meant for a 400 body, on an unterminated
// block, an unknown key or a bad value, so a typo in a test fails loudly instead of silently.
std::string strip_directives(std::string_view text, directives& out);

}  // namespace fake
