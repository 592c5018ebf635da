// boxed<T>: an optional value kept on the heap, for the rarely set fields of the structs every job
// keeps for its whole life (job_view, task, job): 8 bytes when empty, where std::optional<T>
// takes sizeof(T) + 8 inline. Reads like std::optional<T> and copies deep.
#pragma once

#include <concepts>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace agentd::protocol {

template <class T>
class boxed {
    template <class U>
    static constexpr bool is_value =
        !std::same_as<std::remove_cvref_t<U>, boxed> &&
        !std::same_as<std::remove_cvref_t<U>, std::nullopt_t> && std::constructible_from<T, U&&>;

  public:
    using value_type = T;

    boxed() = default;
    boxed(std::nullopt_t) {}
    template <class U = T>
    requires is_value<U> boxed(U&& v) : value_(std::make_unique<T>(std::forward<U>(v))) {}
    boxed(std::optional<T> v) {
        if (v) value_ = std::make_unique<T>(std::move(*v));
    }
    boxed(boxed const& o) : value_(o.value_ ? std::make_unique<T>(*o.value_) : nullptr) {}
    boxed(boxed&&) noexcept = default;

    boxed& operator=(boxed const& o) {
        if (!o.value_)
            value_.reset();
        else if (value_)
            *value_ = *o.value_;
        else
            value_ = std::make_unique<T>(*o.value_);
        return *this;
    }
    boxed& operator=(boxed&&) noexcept = default;
    boxed& operator=(std::nullopt_t) {
        value_.reset();
        return *this;
    }
    template <class U = T>
    requires is_value<U> boxed& operator=(U&& v) {
        if (value_)
            *value_ = std::forward<U>(v);
        else
            value_ = std::make_unique<T>(std::forward<U>(v));
        return *this;
    }

    template <class... A>
    T& emplace(A&&... a) {
        value_ = std::make_unique<T>(std::forward<A>(a)...);
        return *value_;
    }
    void reset() { value_.reset(); }

    bool has_value() const { return value_ != nullptr; }
    explicit operator bool() const { return has_value(); }
    T& operator*() { return *value_; }
    T const& operator*() const { return *value_; }
    T* operator->() { return value_.get(); }
    T const* operator->() const { return value_.get(); }
    T const& value() const {
        if (!value_) throw std::bad_optional_access();
        return *value_;
    }
    template <class U>
    T value_or(U&& fallback) const {
        return value_ ? *value_ : static_cast<T>(std::forward<U>(fallback));
    }
    // For the interfaces that take a std::optional<T>.
    std::optional<T> optional() const { return value_ ? std::optional<T>(*value_) : std::nullopt; }

    friend bool operator==(boxed const& a, boxed const& b) {
        return a.has_value() == b.has_value() && (!a.value_ || *a.value_ == *b.value_);
    }
    friend bool operator==(boxed const& a, std::nullopt_t) { return !a.value_; }
    template <class U>
    requires(!std::same_as<U, boxed> && !std::same_as<U, std::nullopt_t>) friend bool operator==(
        boxed const& a, U const& b) {
        return a.value_ && *a.value_ == b;
    }

  private:
    std::unique_ptr<T> value_;
};

}  // namespace agentd::protocol
