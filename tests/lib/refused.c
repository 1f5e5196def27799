/*
 * refused.c - the table of refused requests that test_http (pure) and bad_input (socket) both
 * run; see refused.h for the state each row runs against and what is checked.
 */
#include "refused.h"

#include <stdio.h>
#include <string.h>

#define API "/v2/error_injection"
#define AUTH_LINE "Authorization: Bearer " REFUSED_TOKEN "\r\n"

#define A16 "aaaaaaaaaaaaaaaa"
#define A64 A16 A16 A16 A16
#define NAME255 A64 A64 A64 A16 A16 A16 "aaaaaaaaaaaaaaa"
#define NAME256 NAME255 "a"
#define Q8 "x=1&x=1&x=1&x=1&x=1&x=1&x=1&x=1&"
#define Q65 Q8 Q8 Q8 Q8 Q8 Q8 Q8 Q8 "x=1"
#define INJ API "/injection/"
#define ENABLE(what_, body_, status_, expect_)                                                               \
    {                                                                                                        \
        .what = what_, .method = "POST", .target = INJ "attack.x", .body = body_, .status = status_,         \
        .expect = expect_                                                                                    \
    }
#define MALFORMED "malformed JSON body"
#define NOT_OBJECT "parameters must be a JSON object"
#define BAD_NAME "injection name must be 1 to 255 bytes of UTF-8 without control characters"
#define BAD_PCT "bad percent-encoding"
#define UNKNOWN "unknown path"
#define CROSS "cross-origin request refused"
#define NO_TOKEN "missing or wrong Authorization: Bearer token"
#define TOO_LARGE "request body is larger than 1 MiB"

/* One row, one or two lines. */
// clang-format off
const struct refused refused_requests[] = {
    /* Malformed and non-object JSON bodies. */
    ENABLE("JSON cut short", "{\"k\":", 400, MALFORMED),
    ENABLE("JSON without a colon", "{\"k\" 1}", 400, MALFORMED),
    ENABLE("JSON with single quotes", "{'k': 'v'}", 400, MALFORMED),
    ENABLE("JSON followed by garbage", "{\"k\":\"v\"} trailing", 400, MALFORMED),
    ENABLE("two JSON objects", "{\"k\":\"v\"}{\"k\":\"w\"}", 400, MALFORMED),
    ENABLE("JSON with \\u0000 in a value", "{\"k\":\"a\\u0000b\"}", 400, MALFORMED),
    {.what = "JSON with a raw NUL byte in a value", .method = "POST", .target = INJ "attack.x",
     .body = "{\"k\":\"a\0b\"}", .body_len = 11, .status = 400, .expect = MALFORMED},
    ENABLE("JSON with invalid UTF-8 in a value", "{\"k\":\"\xff\xfe\"}", 400, MALFORMED),
    ENABLE("JSON with an overlong UTF-8 key", "{\"\xc0\xaf\":\"v\"}", 400, MALFORMED),
    ENABLE("JSON number out of range", "{\"k\":1e999}", 400, MALFORMED),
    {.what = "JSON nested 5000 deep", .method = "POST", .target = INJ "attack.x", .gen = REFUSED_BODY_DEEP_JSON,
     .status = 400, .expect = MALFORMED},
    ENABLE("JSON array instead of an object", "[\"k\",\"v\"]", 400, NOT_OBJECT),
    ENABLE("JSON string instead of an object", "\"k=v\"", 400, NOT_OBJECT),
    ENABLE("JSON number instead of an object", "42", 400, NOT_OBJECT),
    ENABLE("JSON true instead of an object", "true", 400, NOT_OBJECT),
    ENABLE("not JSON at all", "k=v&n=1", 400, MALFORMED),
    /* Bodies over 1 MiB, on every route that changes state. */
    {.what = "1 MiB + 1 body on enable", .method = "POST", .target = INJ "attack.big", .gen = REFUSED_BODY_MIB_PLUS_1,
     .status = 413, .expect = TOO_LARGE},
    {.what = "1 MiB + 1 body, chunked, on enable", .method = "POST", .target = INJ "attack.big",
     .gen = REFUSED_BODY_MIB_PLUS_1_CHUNKED, .status = 413, .expect = TOO_LARGE},
    {.what = "1 MiB + 1 body on re-enable of the pre-enabled injection", .method = "POST",
     .target = INJ "attack.pre", .gen = REFUSED_BODY_MIB_PLUS_1, .status = 413, .expect = TOO_LARGE},
    {.what = "1 MiB + 1 body on disable-all", .method = "DELETE", .target = API "/injection", .gen = REFUSED_BODY_MIB_PLUS_1,
     .status = 413, .expect = TOO_LARGE},
    {.what = "1 MiB + 1 body on message", .method = "POST", .target = INJ "attack.pre/message",
     .gen = REFUSED_BODY_MIB_PLUS_1, .status = 413, .expect = TOO_LARGE},
    {.what = "Content-Length of 10^23 (libmicrohttpd answers)",
     .raw = "POST " INJ "attack.big HTTP/1.1\r\n{HOST}{AUTH}Content-Length: 99999999999999999999999\r\n" "Connection: close\r\n\r\n",
     .status = 413},
    {.what = "negative Content-Length (libmicrohttpd answers)",
     .raw = "POST " INJ "attack.big HTTP/1.1\r\n{HOST}{AUTH}Content-Length: -1\r\nConnection: close\r\n\r\n",
     .status = 400},
    {.what = "control: a body of exactly 1 MiB is accepted", .method = "POST", .target = INJ "attack.mib",
     .gen = REFUSED_BODY_MIB_EXACT_JSON, .status = 200, .enables = "attack.mib"},
    /* Names: empty, 256 bytes, control characters, invalid UTF-8, bad percent-encoding. */
    {.what = "empty name on enable", .method = "POST", .target = INJ, .status = 400, .expect = BAD_NAME},
    {.what = "empty name on disable", .method = "DELETE", .target = INJ, .status = 400, .expect = BAD_NAME},
    {.what = "empty name on message", .method = "POST", .target = INJ "/message", .status = 400, .expect = BAD_NAME},
    {.what = "empty name on enters", .method = "GET", .target = INJ "/enters", .status = 400, .expect = BAD_NAME},
    {.what = "256-byte name on enable", .method = "POST", .target = INJ NAME256, .status = 400, .expect = BAD_NAME},
    {.what = "256-byte name on disable", .method = "DELETE", .target = INJ NAME256, .status = 400,
     .expect = BAD_NAME},
    {.what = "256-byte name after decoding %41", .method = "POST", .target = INJ NAME255 "%41", .status = 400,
     .expect = BAD_NAME},
    {.what = "control: a 255-byte name is a name", .method = "GET", .target = INJ NAME255, .status = 200,
     .expect = "[{\"enabled\":false}]"},
    {.what = "name with %01", .method = "POST", .target = INJ "attack%01x", .status = 400, .expect = BAD_NAME},
    {.what = "name with %0A (newline)", .method = "POST", .target = INJ "attack%0Ax", .status = 400,
     .expect = BAD_NAME},
    {.what = "name with %0D%0A and a header after it", .method = "POST", .target = INJ "a%0D%0AX-Injected:%201",
     .status = 400, .expect = BAD_NAME},
    {.what = "name with %1B (escape)", .method = "POST", .target = INJ "attack%1B[31m", .status = 400,
     .expect = BAD_NAME},
    {.what = "name with %7F (DEL)", .method = "POST", .target = INJ "attack%7F", .status = 400, .expect = BAD_NAME},
    {.what = "name with %C2%85 (C1 control NEL)", .method = "POST", .target = INJ "attack%C2%85", .status = 400,
     .expect = BAD_NAME},
    {.what = "name with a raw tab", .method = "POST", .target = INJ "attack\tx", .status = 400, .expect = BAD_NAME},
    {.what = "name with a raw \\x01", .method = "POST", .target = INJ "attack\x01x", .status = 400,
     .expect = BAD_NAME},
    {.what = "name with a raw NUL byte",
     .raw = "POST " INJ "attack.pre\0x HTTP/1.1\r\n{HOST}{AUTH}Connection: close\r\n\r\n",
     .raw_len = sizeof("POST " INJ "attack.pre\0x HTTP/1.1\r\n{HOST}{AUTH}Connection: close\r\n\r\n") - 1,
     .status = 400, .expect = "NUL"},
    {.what = "disable with a raw NUL byte cutting the name to the pre-enabled one",
     .raw = "DELETE " INJ "attack.pre\0tail HTTP/1.1\r\n{HOST}{AUTH}Connection: close\r\n\r\n",
     .raw_len = sizeof("DELETE " INJ "attack.pre\0tail HTTP/1.1\r\n{HOST}{AUTH}Connection: close\r\n\r\n") - 1,
     .status = 400, .expect = "NUL"},
    {.what = "name with %FF (invalid UTF-8)", .method = "POST", .target = INJ "attack%FF", .status = 400,
     .expect = BAD_NAME},
    {.what = "name with a raw \\xff", .method = "POST", .target = INJ "attack\xff", .status = 400,
     .expect = BAD_NAME},
    {.what = "name with a lone continuation byte %80", .method = "POST", .target = INJ "a%80b", .status = 400,
     .expect = BAD_NAME},
    {.what = "name with an overlong '/' %C0%AF", .method = "POST", .target = INJ "a%C0%AFb", .status = 400,
     .expect = BAD_NAME},
    {.what = "name with an overlong 3-byte form %E0%80%AF", .method = "POST", .target = INJ "a%E0%80%AFb",
     .status = 400, .expect = BAD_NAME},
    {.what = "name with a UTF-16 surrogate %ED%A0%80", .method = "POST", .target = INJ "a%ED%A0%80b", .status = 400,
     .expect = BAD_NAME},
    {.what = "name past U+10FFFF %F4%90%80%80", .method = "POST", .target = INJ "a%F4%90%80%80", .status = 400,
     .expect = BAD_NAME},
    {.what = "name with a truncated sequence %E2%82", .method = "POST", .target = INJ "a%E2%82", .status = 400,
     .expect = BAD_NAME},
    {.what = "name with %00", .method = "POST", .target = INJ "attack%00x", .status = 400, .expect = BAD_PCT},
    {.what = "name with %00 cutting it to the pre-enabled one", .method = "DELETE", .target = INJ "attack.pre%00x",
     .status = 400, .expect = BAD_PCT},
    {.what = "name ending in a bare %", .method = "POST", .target = INJ "attack%", .status = 400, .expect = BAD_PCT},
    {.what = "name with %2 and one digit", .method = "POST", .target = INJ "attack%2", .status = 400,
     .expect = BAD_PCT},
    {.what = "name with %zz", .method = "POST", .target = INJ "attack%zz", .status = 400, .expect = BAD_PCT},
    /* Percent-encoded slashes are part of a name, never a path separator. */
    {.what = "%2F: GET of a/message is a name, not the message action", .method = "GET",
     .target = INJ "attack.pre%2Fmessage", .status = 200, .expect = "[{\"enabled\":false}]"},
    {.what = "%2f: GET of a/enters is a name, not the enters action", .method = "GET",
     .target = INJ "attack.pre%2fenters", .status = 200, .expect = "[{\"enabled\":false}]"},
    {.what = "%2F: POST of a/message enables nothing of attack.pre", .method = "POST",
     .target = INJ "attack.pre%2Fmessage", .status = 200, .enables = "attack.pre/message"},
    {.what = "%2F: DELETE of attack.pre/ leaves attack.pre alone", .method = "DELETE", .target = INJ "attack.pre%2F",
     .status = 200},
    {.what = "%2F: POST of a/b/enters is the enters action of a/b (wrong method)", .method = "POST",
     .target = INJ "a%2Fb/enters", .status = 405, .expect = "use GET"},
    {.what = "%2F in the route itself", .method = "GET", .target = API "/injection%2Fattack.pre", .status = 404,
     .expect = UNKNOWN},
    {.what = "%2F in the prefix", .method = "GET", .target = "/v2%2Ferror_injection/status", .status = 404,
     .expect = UNKNOWN},
    {.what = "%2E%2E%2F in a name", .method = "GET", .target = INJ "%2E%2E%2Fstatus", .status = 200,
     .expect = "[{\"enabled\":false}]"},
    /* Unknown paths. */
    {.what = "root path", .method = "GET", .target = "/", .status = 404, .expect = UNKNOWN},
    {.what = "prefix without a slash", .method = "GET", .target = API, .status = 404, .expect = UNKNOWN},
    {.what = "prefix with a slash", .method = "GET", .target = API "/", .status = 404, .expect = UNKNOWN},
    {.what = "unknown route", .method = "GET", .target = API "/nope", .status = 404, .expect = UNKNOWN},
    {.what = "unknown action", .method = "GET", .target = INJ "attack.pre/nope", .status = 404, .expect = UNKNOWN},
    {.what = "action with a tail", .method = "POST", .target = INJ "attack.pre/message/again", .status = 404,
     .expect = UNKNOWN},
    {.what = "route with a trailing slash", .method = "GET", .target = API "/status/", .status = 404,
     .expect = UNKNOWN},
    {.what = "path traversal", .method = "GET", .target = API "/../../etc/passwd", .status = 404, .expect = UNKNOWN},
    {.what = "upper-case path", .method = "GET", .target = "/V2/ERROR_INJECTION/status", .status = 404,
     .expect = UNKNOWN},
    {.what = "absolute URI", .method = "GET", .target = "http://127.0.0.1:{PORT}" API "/injection", .status = 404,
     .expect = UNKNOWN},
    {.what = "asterisk target", .method = "OPTIONS", .target = "*", .status = 404, .expect = UNKNOWN},
    /* Unknown and wrong methods. */
    {.what = "PUT on an injection", .method = "PUT", .target = INJ "attack.pre", .body = "{\"k\":\"evil\"}",
     .status = 405, .expect = "use GET, HEAD, POST or DELETE"},
    {.what = "PATCH on an injection", .method = "PATCH", .target = INJ "attack.pre", .body = "{\"k\":\"evil\"}",
     .status = 405, .expect = "use GET, HEAD, POST or DELETE"},
    {.what = "lower-case post", .method = "post", .target = INJ "attack.x", .status = 405,
     .expect = "method not allowed"},
    {.what = "made-up method", .method = "FROB", .target = API "/injection", .status = 405,
     .expect = "use GET, HEAD or DELETE"},
    {.what = "TRACE", .method = "TRACE", .target = API "/status", .status = 405, .expect = "use GET"},
    {.what = "POST on the list", .method = "POST", .target = API "/injection", .status = 405,
     .expect = "use GET, HEAD or DELETE"},
    {.what = "DELETE on points", .method = "DELETE", .target = API "/points", .status = 405, .expect = "use GET"},
    {.what = "POST on status", .method = "POST", .target = API "/status", .status = 405, .expect = "use GET"},
    {.what = "POST on events", .method = "POST", .target = API "/events", .status = 405, .expect = "use GET"},
    {.what = "GET on message", .method = "GET", .target = INJ "attack.pre/message", .status = 405,
     .expect = "use POST"},
    {.what = "DELETE on message", .method = "DELETE", .target = INJ "attack.pre/message", .status = 405,
     .expect = "use POST"},
    {.what = "POST on enters", .method = "POST", .target = INJ "attack.pre/enters", .status = 405,
     .expect = "use GET"},
    {.what = "DELETE on waiters", .method = "DELETE", .target = INJ "attack.pre/waiters", .status = 405,
     .expect = "use GET"},
    /* Bad query values. */
    {.what = "one_shot=maybe", .method = "POST", .target = INJ "attack.x?one_shot=maybe", .status = 400,
     .expect = "one_shot must be true or false"},
    {.what = "one_shot=maybe on the pre-enabled injection", .method = "POST",
     .target = INJ "attack.pre?one_shot=maybe", .body = "{\"k\":\"evil\"}", .status = 400,
     .expect = "one_shot must be true or false"},
    {.what = "one_shot= (empty)", .method = "POST", .target = INJ "attack.x?one_shot=", .status = 400,
     .expect = "one_shot must be true or false"},
    {.what = "one_shot without a value", .method = "POST", .target = INJ "attack.x?one_shot", .status = 400,
     .expect = "one_shot must be true or false"},
    {.what = "one_shot=1", .method = "POST", .target = INJ "attack.x?one_shot=1", .status = 400,
     .expect = "one_shot must be true or false"},
    {.what = "one_shot=true%00", .method = "POST", .target = INJ "attack.x?one_shot=true%00", .status = 400,
     .expect = "one_shot must be true or false"},
    {.what = "one_shot=true then one_shot=maybe", .method = "POST",
     .target = INJ "attack.x?one_shot=true&one_shot=maybe", .status = 400,
     .expect = "one_shot must be true or false"},
    {.what = "since=-1", .method = "GET", .target = API "/events?since=-1", .status = 400,
     .expect = "since must be a non-negative integer"},
    {.what = "since= (empty)", .method = "GET", .target = API "/events?since=", .status = 400,
     .expect = "since must be a non-negative integer"},
    {.what = "since=1e3", .method = "GET", .target = API "/events?since=1e3", .status = 400,
     .expect = "since must be a non-negative integer"},
    {.what = "since=2^64 and more", .method = "GET", .target = API "/events?since=99999999999999999999999",
     .status = 400, .expect = "since must be a non-negative integer"},
    {.what = "since=%zz", .method = "GET", .target = API "/events?since=%zz", .status = 400, .expect = BAD_PCT},
    {.what = "shard=x", .method = "GET", .target = API "/events?shard=x", .status = 400,
     .expect = "shard must be a non-negative integer"},
    {.what = "shard=-1", .method = "GET", .target = API "/events?shard=-1", .status = 400,
     .expect = "shard must be a non-negative integer"},
    {.what = "shard=2^32", .method = "GET", .target = API "/events?shard=4294967296", .status = 400,
     .expect = "shard must be a non-negative integer"},
    {.what = "type=bogus", .method = "GET", .target = API "/events?type=bogus", .status = 400,
     .expect = "type must be"},
    {.what = "phase=bogus", .method = "GET", .target = API "/events?phase=bogus", .status = 400,
     .expect = "phase must be"},
    {.what = "injection= (empty)", .method = "GET", .target = API "/events?injection=", .status = 400,
     .expect = "injection must be a valid injection name"},
    {.what = "injection=%FF", .method = "GET", .target = API "/events?injection=%FF", .status = 400,
     .expect = "injection must be a valid injection name"},
    {.what = "Last-Event-ID: -1", .method = "GET", .target = API "/events", .headers = "Last-Event-ID: -1\r\n",
     .status = 400, .expect = "Last-Event-ID must be a non-negative integer"},
    {.what = "Last-Event-ID: abc", .method = "GET", .target = API "/events", .headers = "Last-Event-ID: abc\r\n",
     .status = 400, .expect = "Last-Event-ID must be a non-negative integer"},
    {.what = "65 query parameters", .method = "POST", .target = INJ "attack.x?" Q65, .status = 400,
     .expect = "too many query parameters"},
    /* A missing or wrong token. */
    {.what = "no Authorization header", .method = "POST", .target = INJ "attack.x", .flags = REFUSED_NO_AUTH, .status = 401,
     .expect = NO_TOKEN, .header = "WWW-Authenticate: Bearer"},
    {.what = "wrong token", .method = "POST", .target = INJ "attack.x", .flags = REFUSED_NO_AUTH,
     .headers = "Authorization: Bearer wrong-token\r\n", .status = 401, .expect = NO_TOKEN},
    {.what = "the token with one more byte", .method = "POST", .target = INJ "attack.x", .flags = REFUSED_NO_AUTH,
     .headers = "Authorization: Bearer " REFUSED_TOKEN "x\r\n", .status = 401, .expect = NO_TOKEN},
    {.what = "the token less its last byte", .method = "POST", .target = INJ "attack.x", .flags = REFUSED_NO_AUTH,
     .headers = "Authorization: Bearer attack-toke\r\n", .status = 401, .expect = NO_TOKEN},
    {.what = "the token as Basic credentials", .method = "POST", .target = INJ "attack.x", .flags = REFUSED_NO_AUTH,
     .headers = "Authorization: Basic " REFUSED_TOKEN "\r\n", .status = 401, .expect = NO_TOKEN},
    {.what = "the token without a scheme", .method = "POST", .target = INJ "attack.x", .flags = REFUSED_NO_AUTH,
     .headers = "Authorization: " REFUSED_TOKEN "\r\n", .status = 401, .expect = NO_TOKEN},
    {.what = "Bearer and two spaces", .method = "POST", .target = INJ "attack.x", .flags = REFUSED_NO_AUTH,
     .headers = "Authorization: Bearer  " REFUSED_TOKEN "\r\n", .status = 401, .expect = NO_TOKEN},
    {.what = "empty Authorization", .method = "POST", .target = INJ "attack.x", .flags = REFUSED_NO_AUTH,
     .headers = "Authorization:\r\n", .status = 401, .expect = NO_TOKEN},
    {.what = "the token in the query instead", .method = "POST", .target = INJ "attack.x?token=" REFUSED_TOKEN,
     .flags = REFUSED_NO_AUTH, .status = 401, .expect = NO_TOKEN},
    {.what = "wrong token on disable-all", .method = "DELETE", .target = API "/injection", .flags = REFUSED_NO_AUTH,
     .headers = "Authorization: Bearer wrong-token\r\n", .status = 401, .expect = NO_TOKEN},
    {.what = "wrong token on re-enable with new parameters", .method = "POST",
     .target = INJ "attack.pre?one_shot=true", .flags = REFUSED_NO_AUTH, .headers = "Authorization: Bearer wrong-token\r\n",
     .body = "{\"k\":\"evil\"}", .status = 401, .expect = NO_TOKEN},
    {.what = "wrong token on message (the parked thread stays)", .method = "POST",
     .target = INJ "attack.pre/message", .flags = REFUSED_NO_AUTH, .headers = "Authorization: Bearer wrong-token\r\n",
     .status = 401, .expect = NO_TOKEN},
    {.what = "no token on the event stream", .method = "GET", .target = API "/events", .flags = REFUSED_NO_AUTH,
     .status = 401, .expect = NO_TOKEN},
    {.what = "no token on reading the list", .method = "GET", .target = API "/injection", .flags = REFUSED_NO_AUTH,
     .status = 401, .expect = NO_TOKEN},
    /* Cross-origin requests: a foreign Origin, or a Host that is not loopback (DNS rebinding). */
    {.what = "foreign Origin on enable", .method = "POST", .target = INJ "attack.x",
     .headers = "Origin: http://evil.example\r\n", .status = 403, .expect = CROSS},
    {.what = "foreign Origin on disable-all", .method = "DELETE", .target = API "/injection",
     .headers = "Origin: http://evil.example\r\n", .status = 403, .expect = CROSS},
    {.what = "foreign Origin on the event stream", .method = "GET", .target = API "/events",
     .headers = "Origin: http://evil.example\r\n", .status = 403, .expect = CROSS},
    {.what = "foreign Origin and a wrong token (403 first)", .method = "POST", .target = INJ "attack.x",
     .flags = REFUSED_NO_AUTH, .headers = "Origin: http://evil.example\r\nAuthorization: Bearer wrong\r\n", .status = 403,
     .expect = CROSS},
    {.what = "Origin: null (sandboxed page, file://)", .method = "POST", .target = INJ "attack.x",
     .headers = "Origin: null\r\n", .status = 403, .expect = CROSS},
    {.what = "own host and port over https", .method = "POST", .target = INJ "attack.x",
     .headers = "Origin: https://127.0.0.1:{PORT}\r\n", .status = 403, .expect = CROSS},
    {.what = "own host without the port", .method = "POST", .target = INJ "attack.x",
     .headers = "Origin: http://127.0.0.1\r\n", .status = 403, .expect = CROSS},
    {.what = "own origin as a prefix of another host", .method = "POST", .target = INJ "attack.x",
     .headers = "Origin: http://127.0.0.1:{PORT}.evil.example\r\n", .status = 403, .expect = CROSS},
    {.what = "localhost origin against a 127.0.0.1 Host", .method = "POST", .target = INJ "attack.x",
     .headers = "Origin: http://localhost:{PORT}\r\n", .status = 403, .expect = CROSS},
    {.what = "CORS preflight from a foreign page", .method = "OPTIONS", .target = INJ "attack.x",
     .headers = "Origin: http://evil.example\r\nAccess-Control-Request-Method: POST\r\n", .status = 403,
     .expect = CROSS},
    {.what = "Host: evil.example (DNS rebinding)", .method = "POST", .target = INJ "attack.x", .flags = REFUSED_NO_HOST,
     .headers = "Host: evil.example:{PORT}\r\n", .status = 403, .expect = CROSS},
    {.what = "Host: 127.0.0.1.evil.example", .method = "POST", .target = INJ "attack.x", .flags = REFUSED_NO_HOST,
     .headers = "Host: 127.0.0.1.evil.example:{PORT}\r\n", .status = 403, .expect = CROSS},
    {.what = "Host: localhost.evil.example", .method = "POST", .target = INJ "attack.x", .flags = REFUSED_NO_HOST,
     .headers = "Host: localhost.evil.example\r\n", .status = 403, .expect = CROSS},
    {.what = "Host: [::1]evil", .method = "POST", .target = INJ "attack.x", .flags = REFUSED_NO_HOST,
     .headers = "Host: [::1]evil\r\n", .status = 403, .expect = CROSS},
    {.what = "rebinding Host with the own Origin", .method = "DELETE", .target = API "/injection", .flags = REFUSED_NO_HOST,
     .headers = "Host: evil.example:{PORT}\r\nOrigin: http://evil.example:{PORT}\r\n", .status = 403,
     .expect = CROSS},
    {.what = "control: the own Origin is allowed", .method = "GET", .target = INJ "attack.pre",
     .headers = "Origin: http://127.0.0.1:{PORT}\r\n", .status = 200, .expect = "\"enabled\":true"},
    /* Requests that are not HTTP libmicrohttpd understands. */
    {.what = "not HTTP at all", .raw = "GARBAGE\r\n\r\n", .status = 0},
    /* NUL bytes in the request line, wherever they are: 400, closed, nothing changed. */
    {.what = "raw NUL then \"HTTP/\" in the path (disables attack.pre?)",
     .raw = "DELETE " INJ "attack.pre\0HTTP/1.1 HTTP/1.1\r\n{HOST}{AUTH}\r\n",
     .raw_len = sizeof("DELETE " INJ "attack.pre\0HTTP/1.1 HTTP/1.1\r\n{HOST}{AUTH}\r\n") - 1, .status = 400,
     .expect = "NUL", .closes = true},
    {.what = "raw NUL inside the method", .raw = "DEL\0ETE " INJ "attack.pre HTTP/1.1\r\n{HOST}{AUTH}\r\n",
     .raw_len = sizeof("DEL\0ETE " INJ "attack.pre HTTP/1.1\r\n{HOST}{AUTH}\r\n") - 1, .status = 400,
     .expect = "NUL", .closes = true},
    {.what = "raw NUL in the query", .raw = "POST " INJ "attack.pre?one_shot=tr\0ue HTTP/1.1\r\n{HOST}{AUTH}\r\n",
     .raw_len = sizeof("POST " INJ "attack.pre?one_shot=tr\0ue HTTP/1.1\r\n{HOST}{AUTH}\r\n") - 1, .status = 400,
     .expect = "NUL", .closes = true},
    /* The message length given twice or two ways (request smuggling), an unknown coding. */
    {.what = "two different Content-Lengths",
     .raw = "POST " INJ "attack.x HTTP/1.1\r\n{HOST}{AUTH}Content-Length: 2\r\nContent-Length: 9\r\n\r\n{}",
     .status = 400, .expect = "two different Content-Length", .closes = true},
    {.what = "Content-Length with chunked",
     .raw = "POST " INJ "attack.x HTTP/1.1\r\n{HOST}{AUTH}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
            "2\r\n{}\r\n0\r\n\r\n",
     .status = 400, .expect = "Content-Length and Transfer-Encoding", .closes = true},
    {.what = "Transfer-Encoding: gzip", .raw = "POST " INJ "attack.x HTTP/1.1\r\n{HOST}{AUTH}Transfer-Encoding: gzip\r\n\r\nab",
     .status = 501, .expect = "unsupported transfer coding", .closes = true},
    {.what = "Transfer-Encoding: gzip, chunked",
     .raw = "POST " INJ "attack.x HTTP/1.1\r\n{HOST}{AUTH}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
     .status = 501, .expect = "unsupported transfer coding", .closes = true},
    {.what = "control: HEAD where GET is", .method = "HEAD", .target = INJ "attack.pre", .status = 200},
    {.what = "control: HEAD on the event stream", .method = "HEAD", .target = API "/events", .status = 200},
    {.what = "HEAD of a POST-only route (a 405 without a body)", .method = "HEAD", .target = INJ "attack.pre/message",
     .status = 405, .header = "Allow: POST"},
    {.what = "disconnect without a handler", .method = "POST", .target = API "/disconnect/127.0.0.1", .status = 404,
     .expect = "no disconnect handler"},
    {.what = "disconnect of a non-address", .method = "POST", .target = API "/disconnect/not-an-ip", .status = 400,
     .expect = "IPv4 or IPv6"},
    {.what = "disconnect with GET", .method = "GET", .target = API "/disconnect/127.0.0.1", .status = 405,
     .expect = "use POST"},
    {.what = "HTTP/0.9 request line", .raw = "GET " API "/status\r\n\r\n", .status = 400},
    {.what = "HTTP/2.0 in a text request line", .raw = "GET " API "/status HTTP/2.0\r\n{HOST}{AUTH}\r\n",
     .status = 505},
    {.what = "bad chunked encoding",
     .raw = "POST " INJ "attack.x HTTP/1.1\r\n{HOST}{AUTH}Transfer-Encoding: chunked\r\n" "Connection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
     .status = 400},
    /* More bodies, names, queries, tokens and origins (the pure driver's table until both ran one). */
    ENABLE("JSON of one brace", "{", 400, MALFORMED),
    {.what = "JSON cut short on the pre-enabled injection", .method = "POST", .target = INJ "attack.pre",
     .body = "{\"k\":", .status = 400, .expect = MALFORMED},
    {.what = "trailing garbage on the pre-enabled injection", .method = "POST", .target = INJ "attack.pre",
     .body = "{\"k\":\"x\"} x", .status = 400, .expect = MALFORMED},
    {.what = "two objects on the pre-enabled injection", .method = "POST", .target = INJ "attack.pre",
     .body = "{} {}", .status = 400, .expect = MALFORMED},
    ENABLE("JSON array of numbers", "[1,2]", 400, NOT_OBJECT),
    {.what = "JSON array of an object on the pre-enabled injection", .method = "POST", .target = INJ "attack.pre",
     .body = "[{\"k\":\"x\"}]", .status = 400, .expect = NOT_OBJECT},
    {.what = "JSON true on the pre-enabled injection", .method = "POST", .target = INJ "attack.pre", .body = "true",
     .status = 400, .expect = NOT_OBJECT},
    {.what = "JSON with \\u0000 in a value on the pre-enabled injection", .method = "POST",
     .target = INJ "attack.pre", .body = "{\"k\":\"a\\u0000b\"}", .status = 400, .expect = MALFORMED},
    {.what = "JSON with \\u0000 in a key on the pre-enabled injection", .method = "POST", .target = INJ "attack.pre",
     .body = "{\"a\\u0000b\":\"x\"}", .status = 400, .expect = MALFORMED},
    {.what = "name with %4 and one digit", .method = "POST", .target = INJ "a%4", .status = 400, .expect = BAD_PCT},
    {.what = "bad escape on DELETE", .method = "DELETE", .target = INJ "attack%zzpre", .status = 400,
     .expect = BAD_PCT},
    {.what = "bad escape on GET", .method = "GET", .target = INJ "%g0", .status = 400, .expect = BAD_PCT},
    {.what = "empty name before an action", .method = "POST", .target = INJ "/message", .status = 400,
     .expect = BAD_NAME},
    {.what = "name with %1F", .method = "POST", .target = INJ "a%1F", .status = 400, .expect = BAD_NAME},
    {.what = "name of only %C2%80 (C1 control)", .method = "POST", .target = INJ "%C2%80", .status = 400,
     .expect = BAD_NAME},
    {.what = "name of only an overlong %E0%80%AF", .method = "POST", .target = INJ "%E0%80%AF", .status = 400,
     .expect = BAD_NAME},
    {.what = "name of only a lone continuation %80", .method = "POST", .target = INJ "%80", .status = 400,
     .expect = BAD_NAME},
    {.what = "invalid UTF-8 on DELETE", .method = "DELETE", .target = INJ "%FF", .status = 400, .expect = BAD_NAME},
    {.what = "invalid UTF-8 on message", .method = "POST", .target = INJ "%FF/message", .status = 400,
     .expect = BAD_NAME},
    {.what = "one_shot with a bad escape", .method = "POST", .target = INJ "attack.x?one_shot=tr%zzue", .status = 400},
    {.what = "one_shot=true then one_shot=nope on the pre-enabled injection", .method = "POST",
     .target = INJ "attack.pre?one_shot=true&one_shot=nope", .status = 400,
     .expect = "one_shot must be true or false"},
    {.what = "since=x", .method = "GET", .target = API "/events?since=x", .status = 400,
     .expect = "since must be a non-negative integer"},
    {.what = "since=1.5", .method = "GET", .target = API "/events?since=1.5", .status = 400,
     .expect = "since must be a non-negative integer"},
    {.what = "type=SLEEP (names are lower case)", .method = "GET", .target = API "/events?type=SLEEP", .status = 400,
     .expect = "type must be"},
    {.what = "injection=a%01", .method = "GET", .target = API "/events?injection=a%01", .status = 400,
     .expect = "injection must be a valid injection name"},
    {.what = "injection=%zz", .method = "GET", .target = API "/events?injection=%zz", .status = 400},
    {.what = "Last-Event-ID: 3x with a good since", .method = "GET", .target = API "/events?since=3",
     .headers = "Last-Event-ID: 3x\r\n", .status = 400, .expect = "Last-Event-ID must be a non-negative integer"},
    {.what = "no token on disabling the pre-enabled injection", .method = "DELETE", .target = INJ "attack.pre",
     .flags = REFUSED_NO_AUTH, .status = 401, .expect = NO_TOKEN},
    {.what = "no token on disable-all", .method = "DELETE", .target = API "/injection", .flags = REFUSED_NO_AUTH,
     .status = 401, .expect = NO_TOKEN},
    {.what = "Basic credentials on DELETE", .method = "DELETE", .target = INJ "attack.pre", .flags = REFUSED_NO_AUTH,
     .headers = "Authorization: Basic YXR0YWNrLXRva2Vu\r\n", .status = 401, .expect = NO_TOKEN},
    {.what = "Bearer without a token", .method = "POST", .target = INJ "attack.x", .flags = REFUSED_NO_AUTH,
     .headers = "Authorization: Bearer \r\n", .status = 401, .expect = NO_TOKEN},
    {.what = "no token on status", .method = "GET", .target = API "/status", .flags = REFUSED_NO_AUTH, .status = 401,
     .expect = NO_TOKEN},
    {.what = "no token on an unknown path", .method = "GET", .target = "/nope", .flags = REFUSED_NO_AUTH,
     .status = 401, .expect = NO_TOKEN},
    {.what = "foreign Origin on disabling the pre-enabled injection", .method = "DELETE", .target = INJ "attack.pre",
     .headers = "Origin: http://evil.example\r\n", .status = 403, .expect = CROSS},
    {.what = "Origin of another port", .method = "POST", .target = INJ "attack.x",
     .headers = "Origin: http://127.0.0.1:1\r\n", .status = 403, .expect = CROSS},
    {.what = "Host: evil.example on disable-all", .method = "DELETE", .target = API "/injection",
     .flags = REFUSED_NO_HOST, .headers = "Host: evil.example:{PORT}\r\n", .status = 403, .expect = CROSS},
    {.what = "Host: 10.0.0.1", .method = "POST", .target = INJ "attack.x", .flags = REFUSED_NO_HOST,
     .headers = "Host: 10.0.0.1\r\n", .status = 403, .expect = CROSS},
    {.what = "Host: 10.0.0.1:PORT on DELETE", .method = "DELETE", .target = INJ "attack.pre",
     .flags = REFUSED_NO_HOST, .headers = "Host: 10.0.0.1:{PORT}\r\n", .status = 403, .expect = CROSS},
    {.what = "Host: [2001:db8::1]:PORT", .method = "POST", .target = INJ "attack.x", .flags = REFUSED_NO_HOST,
     .headers = "Host: [2001:db8::1]:{PORT}\r\n", .status = 403, .expect = CROSS},
    {.what = "empty Host", .method = "POST", .target = INJ "attack.x", .flags = REFUSED_NO_HOST,
     .headers = "Host:\r\n", .status = 403, .expect = CROSS},
    {.what = "a foreign Origin and no token (403 first)", .method = "POST", .target = INJ "attack.x",
     .flags = REFUSED_NO_AUTH, .headers = "Origin: http://evil.example\r\n", .status = 403, .expect = CROSS},
    /* Pure driver only: libmicrohttpd answers 400 itself to an HTTP/1.1 request without a Host. */
    {.what = "Origin without a Host", .method = "POST", .target = INJ "attack.x",
     .flags = REFUSED_NO_HOST | REFUSED_PURE_ONLY, .headers = "Origin: http://127.0.0.1:{PORT}\r\n", .status = 403,
     .expect = CROSS},
    /* Pure driver only: the test host's server runs without allow_remote. */
    {.what = "foreign Origin even with allow_remote", .method = "POST", .target = INJ "attack.x",
     .flags = REFUSED_NO_HOST | REFUSED_ALLOW_REMOTE | REFUSED_PURE_ONLY,
     .headers = "Host: 10.0.0.1:{PORT}\r\nOrigin: http://evil.example\r\n", .status = 403, .expect = CROSS},
    /* Pure driver only: a request line has no empty target. */
    {.what = "empty path", .method = "GET", .target = "", .flags = REFUSED_PURE_ONLY, .status = 404, .expect = UNKNOWN},
    {.what = "/v2", .method = "GET", .target = "/v2", .status = 404, .expect = UNKNOWN},
    {.what = "/v2/error_injectionX/injection", .method = "GET", .target = "/v2/error_injectionX/injection",
     .status = 404, .expect = UNKNOWN},
    {.what = "/v2/error_injection/injectionX", .method = "GET", .target = API "/injectionX", .status = 404,
     .expect = UNKNOWN},
    {.what = "POST on an unknown route", .method = "POST", .target = API "/nope", .status = 404, .expect = UNKNOWN},
    {.what = "unknown action on POST", .method = "POST", .target = INJ "attack.pre/nope", .status = 404,
     .expect = UNKNOWN},
    {.what = "unknown action on DELETE", .method = "DELETE", .target = INJ "attack.pre/nope", .status = 404,
     .expect = UNKNOWN},
    {.what = "trailing slash after a name on DELETE", .method = "DELETE", .target = INJ "attack.pre/", .status = 404,
     .expect = UNKNOWN},
    {.what = "points with a tail", .method = "GET", .target = API "/points/x", .status = 404, .expect = UNKNOWN},
    {.what = "DELETE on enters", .method = "DELETE", .target = INJ "attack.pre/enters", .status = 405,
     .expect = "use GET"},
    {.what = "POST on waiters", .method = "POST", .target = INJ "attack.pre/waiters", .status = 405,
     .expect = "use GET"},
    {.what = "PUT on the list", .method = "PUT", .target = API "/injection", .status = 405,
     .expect = "use GET, HEAD or DELETE"},
    {.what = "POST on points", .method = "POST", .target = API "/points", .status = 405, .expect = "use GET"},
    {.what = "DELETE on status", .method = "DELETE", .target = API "/status", .status = 405, .expect = "use GET"},
    {.what = "1 MiB + 1 body on disabling the pre-enabled injection", .method = "DELETE", .target = INJ "attack.pre",
     .gen = REFUSED_BODY_MIB_PLUS_1, .status = 413, .expect = TOO_LARGE},
};
// clang-format on
const size_t refused_count = sizeof(refused_requests) / sizeof(refused_requests[0]);

void refused_body(const struct refused *row, struct net_buf *body)
{
    switch (row->gen) {
    case REFUSED_BODY_TEXT:
        if (row->body != NULL)
            net_buf_add(body, row->body, row->body_len ? row->body_len : strlen(row->body));
        break;
    case REFUSED_BODY_MIB_PLUS_1:
    case REFUSED_BODY_MIB_PLUS_1_CHUNKED: {
        char block[4096];
        memset(block, ' ', sizeof(block));
        for (size_t left = REFUSED_ONE_MIB + 1; left > 0;) {
            size_t n = left < sizeof(block) ? left : sizeof(block);
            net_buf_add(body, block, n);
            left -= n;
        }
        body->data[0] = '{'; /* would be a JSON object if it were not too large */
        break;
    }
    case REFUSED_BODY_MIB_EXACT_JSON: {
        net_buf_add(body, "{\"k\":\"", 6);
        char block[4096];
        memset(block, 'v', sizeof(block));
        for (size_t left = REFUSED_ONE_MIB - 8; left > 0;) {
            size_t n = left < sizeof(block) ? left : sizeof(block);
            net_buf_add(body, block, n);
            left -= n;
        }
        net_buf_add(body, "\"}", 2);
        break;
    }
    case REFUSED_BODY_DEEP_JSON:
        for (int i = 0; i < 5000; i++)
            net_buf_add(body, "[", 1);
        break;
    }
    if (body->data == NULL)
        net_buf_add(body, "", 0);
}

void refused_expand(const char *tpl, size_t len, unsigned port, struct net_buf *out)
{
    char port_text[16], host[64];
    snprintf(port_text, sizeof(port_text), "%u", port);
    snprintf(host, sizeof(host), "Host: 127.0.0.1:%u\r\n", port);
    for (size_t i = 0; i < len;) {
        if (tpl[i] == '{' && i + 6 <= len && memcmp(tpl + i, "{PORT}", 6) == 0) {
            net_buf_add(out, port_text, strlen(port_text));
            i += 6;
        } else if (tpl[i] == '{' && i + 6 <= len && memcmp(tpl + i, "{HOST}", 6) == 0) {
            net_buf_add(out, host, strlen(host));
            i += 6;
        } else if (tpl[i] == '{' && i + 6 <= len && memcmp(tpl + i, "{AUTH}", 6) == 0) {
            net_buf_add(out, AUTH_LINE, strlen(AUTH_LINE));
            i += 6;
        } else {
            net_buf_add(out, tpl + i, 1);
            i++;
        }
    }
    if (out->data == NULL)
        net_buf_add(out, "", 0);
}
