// run_coroutine: runs one awaitable to its end on a test's io_context and returns its value (or
// rethrows its exception), running the context meanwhile; fails after `bound`. For tests whose
// context also runs background coroutines that never end (connections, writers).
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <future>
#include <stdexcept>

namespace agentd::test {

template <class T>
T run_coroutine(boost::asio::io_context& ioc, boost::asio::awaitable<T> a,
                std::chrono::milliseconds bound = std::chrono::seconds(15)) {
    auto done = boost::asio::co_spawn(ioc, std::move(a), boost::asio::use_future);
    auto const end = std::chrono::steady_clock::now() + bound;
    while (done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        if (std::chrono::steady_clock::now() > end)
            throw std::runtime_error("the coroutine did not finish in time");
        if (ioc.stopped()) ioc.restart();
        ioc.run_one_for(std::chrono::milliseconds(10));
    }
    return done.get();
}

}  // namespace agentd::test
