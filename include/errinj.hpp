/*
 * errinj.hpp - C++17 conveniences over errinj.h, header-only.
 *
 * In C++, ERRINJ_LAMBDA(name, callable) and ERRINJ_HANDLER(name, callable) take any callable,
 * capturing lambdas included (the macros are variadic, so commas in a lambda's captures or body
 * need no extra parentheses); the C forms ERRINJ_LAMBDA(name, fn, arg) and
 * ERRINJ_HANDLER(name, fn, arg) keep working. ERRINJ_THROW(name, expr) throws expr when enabled.
 * errinj::scoped_enable enables an injection for a scope, errinj::subscription receives events
 * for its lifetime. The callable is called in place, on the firing thread: nothing is copied or
 * allocated on a fire. With -DERRINJ_DISABLE everything here compiles to nothing as well.
 */
#ifndef ERRINJ_HPP
#define ERRINJ_HPP

#if __cplusplus < 201703L
#error "errinj.hpp needs C++17 (errinj.h alone works from C++11)"
#endif

#include <errinj.h>

#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace errinj {

/* The error category of errinj's codes: std::error_code(-code, errinj::category()). */
inline const std::error_category &category() noexcept
{
    struct category_impl : std::error_category {
        const char *name() const noexcept override { return "errinj"; }
        std::string message(int code) const override { return errinj_strerror(-code); }
    };
    static const category_impl instance;
    return instance;
}

namespace detail {

[[noreturn]] inline void throw_error(int rc, const char *what)
{
    throw std::system_error(-rc, category(), what);
}

template <class F> void call_lambda(void *callable)
{
    (*static_cast<F *>(callable))();
}

/* A handler callable takes (errinj_handler *) or nothing, and returns an int, a bool or nothing. */
template <class F> int call_handler(errinj_handler *h, void *callable)
{
    F &f = *static_cast<F *>(callable);
    if constexpr (std::is_invocable_v<F &, errinj_handler *>) {
        if constexpr (std::is_void_v<std::invoke_result_t<F &, errinj_handler *>>)
            return f(h), 0;
        else
            return static_cast<int>(f(h));
    } else {
        (void)h;
        if constexpr (std::is_void_v<std::invoke_result_t<F &>>)
            return f(), 0;
        else
            return static_cast<int>(f());
    }
}

template <class F> void *address(F &f) noexcept
{
    return const_cast<void *>(static_cast<const void *>(std::addressof(f)));
}

#ifndef ERRINJ_DISABLE
inline void fire_lambda(errinj_site *site, errinj_lambda_fn fn, void *arg)
{
    errinj__fire_lambda(site, fn, arg);
}

template <class F> void fire_lambda(errinj_site *site, F &&callable)
{
    errinj__fire_lambda(site, &call_lambda<std::remove_reference_t<F>>, address(callable));
}

inline int fire_handler(errinj_site *site, errinj_handler_fn fn, void *arg)
{
    return errinj__fire_handler(site, fn, arg);
}

template <class F> int fire_handler(errinj_site *site, F &&callable)
{
    return errinj__fire_handler(site, &call_handler<std::remove_reference_t<F>>, address(callable));
}
#endif

/* Names its arguments without evaluating them (the disabled forms put it under `if (0)`). */
template <class... T> constexpr void ignore(const T &...) noexcept {}

} // namespace detail

/*
 * Enables an injection in its constructor (errinj_enable_with()) and disables it in its
 * destructor. Parameters are key, value pairs; a term and a seed as errinj_enable_with() takes
 * them. Throws std::system_error (category errinj::category()) if enabling fails, e.g. on a bad
 * term. Not copyable; movable.
 */
class scoped_enable {
public:
    using params_type = std::vector<std::pair<std::string, std::string>>;

    explicit scoped_enable(std::string name, params_type params = {}, bool one_shot = false)
        : scoped_enable(std::move(name), nullptr, 0, std::move(params), one_shot)
    {
    }
    scoped_enable(std::string name, const std::string &term, params_type params = {}, uint64_t seed = 0)
        : scoped_enable(std::move(name), term.c_str(), seed, std::move(params), false)
    {
    }
    /* With the C options as they are (params, if any, as errinj_enable_with() takes them). */
    scoped_enable(std::string name, const errinj_enable_opts &opts) : name_(std::move(name))
    {
        enable(opts);
    }
    scoped_enable(const scoped_enable &) = delete;
    scoped_enable &operator=(const scoped_enable &) = delete;
    scoped_enable(scoped_enable &&other) noexcept : name_(std::move(other.name_)), active_(other.active_)
    {
        other.active_ = false;
    }
    ~scoped_enable()
    {
        if (active_)
            errinj_disable(name_.c_str());
    }
    const std::string &name() const noexcept { return name_; }
    /* Fires since the injection was enabled (errinj_enters()). */
    uint64_t enters() const noexcept { return errinj_enters(name_.c_str()); }

private:
    scoped_enable(std::string name, const char *term, uint64_t seed, params_type params, bool one_shot)
        : name_(std::move(name))
    {
        std::vector<const char *> kv;
        for (const auto &p : params) {
            kv.push_back(p.first.c_str());
            kv.push_back(p.second.c_str());
        }
        kv.push_back(nullptr);
        errinj_enable_opts opts{};
        opts.one_shot = one_shot;
        opts.term = term;
        opts.seed = seed;
        opts.params = kv.data();
        enable(opts);
    }
    void enable(const errinj_enable_opts &opts)
    {
        int rc = errinj_enable_with(name_.c_str(), &opts);
        if (rc != 0)
            detail::throw_error(rc, "errinj_enable_with");
        active_ = true;
    }
    std::string name_;
    bool active_ = false;
};

/*
 * Calls fn(const errinj_event &) for every event while it lives (errinj_subscribe()); the
 * destructor returns once no call of fn runs. The rules of errinj_subscribe() apply to fn.
 * Throws std::system_error if subscribing fails. Not copyable; movable.
 */
class subscription {
public:
    using callback = std::function<void(const errinj_event &)>;

    template <class F>
    explicit subscription(F &&fn) : fn_(std::make_unique<callback>(std::forward<F>(fn)))
    {
        int rc = errinj_subscribe(&subscription::call, fn_.get(), &sub_);
        if (rc != 0)
            detail::throw_error(rc, "errinj_subscribe");
    }
    subscription(const subscription &) = delete;
    subscription &operator=(const subscription &) = delete;
    subscription(subscription &&other) noexcept : fn_(std::move(other.fn_)), sub_(other.sub_)
    {
        other.sub_ = nullptr;
    }
    subscription &operator=(subscription &&other) noexcept
    {
        if (this != &other) {
            errinj_unsubscribe(sub_);
            fn_ = std::move(other.fn_);
            sub_ = other.sub_;
            other.sub_ = nullptr;
        }
        return *this;
    }
    ~subscription() { errinj_unsubscribe(sub_); }

private:
    static void call(const errinj_event *ev, void *arg) { (*static_cast<callback *>(arg))(*ev); }
    std::unique_ptr<callback> fn_;
    errinj_subscription *sub_ = nullptr;
};

} // namespace errinj

#undef ERRINJ_LAMBDA
#undef ERRINJ_HANDLER
#ifndef ERRINJ_DISABLE

/* ERRINJ_LAMBDA(name, callable) or ERRINJ_LAMBDA(name, fn, arg): calls callable() or fn(arg). */
#define ERRINJ_LAMBDA(name, ...)                                                                 \
    __extension__({                                                                              \
        ERRINJ__SITE(name, ERRINJ_TYPE_LAMBDA)                                                   \
        if (ERRINJ__LIKELY_OFF(errinj__site))                                                   \
            ::errinj::detail::fire_lambda(errinj__site, __VA_ARGS__);                           \
        (void)0;                                                                                 \
    })

/* int ERRINJ_HANDLER(name, callable) or ERRINJ_HANDLER(name, fn, arg): callable(h) or
 * callable() (an int, a bool or nothing, which counts as 0), or fn(h, arg). */
#define ERRINJ_HANDLER(name, ...)                                                                \
    __extension__({                                                                              \
        ERRINJ__SITE(name, ERRINJ_TYPE_HANDLER)                                                  \
        ERRINJ__LIKELY_OFF(errinj__site) ? ::errinj::detail::fire_handler(errinj__site, __VA_ARGS__) : 0; \
    })

/* ERRINJ_THROW(name, expr): a point of type "exception" that throws expr when enabled. */
#define ERRINJ_THROW(name, ...)                                                                  \
    __extension__({                                                                              \
        ERRINJ__SITE(name, ERRINJ_TYPE_EXCEPTION)                                                \
        if (ERRINJ__LIKELY_OFF(errinj__site) && errinj__fire_exception(errinj__site, ERRINJ_EINJECTED) != 0) \
            throw __VA_ARGS__;                                                                   \
        (void)0;                                                                                 \
    })

#else

#define ERRINJ_LAMBDA(name, ...) __extension__({ if (0) { ::errinj::detail::ignore(__VA_ARGS__); } (void)0; })
#define ERRINJ_HANDLER(name, ...) __extension__({ if (0) { ::errinj::detail::ignore(__VA_ARGS__); } 0; })
#define ERRINJ_THROW(name, ...) __extension__({ if (0) { throw __VA_ARGS__; } (void)0; })

#endif /* ERRINJ_DISABLE */

#endif /* ERRINJ_HPP */
