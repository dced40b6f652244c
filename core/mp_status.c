#include "mp_status.h"

const char *mp_status_name(mp_status st)
{
    switch (st) {
    case MP_OK:
        return "ok";
    case MP_DENIED:
        return "denied";
    case MP_UNAVAILABLE:
        return "unavailable";
    case MP_ERROR:
        return "error";
    }
    return "error";
}

const char *mp_net_result_name(mp_net_result r)
{
    switch (r) {
    case MP_NET_OK:
        return "ok";
    case MP_NET_CONNECT:
        return "connection failed";
    case MP_NET_TIMEOUT:
        return "timeout";
    case MP_NET_TLS:
        return "TLS verification failed";
    case MP_NET_TOO_LARGE:
        return "response too large";
    case MP_NET_PROTOCOL:
        return "protocol error";
    case MP_NET_INTERNAL:
        return "internal error";
    }
    return "internal error";
}

mp_status mp_status_classify(mp_net_result net, long http_status)
{
    switch (net) {
    case MP_NET_OK:
        break;
    case MP_NET_CONNECT:
    case MP_NET_TIMEOUT:
        return MP_UNAVAILABLE;
    case MP_NET_TLS:
    case MP_NET_TOO_LARGE:
    case MP_NET_PROTOCOL:
    case MP_NET_INTERNAL:
        return MP_ERROR;
    }
    if (http_status >= 200 && http_status < 300)
        return MP_OK;
    if (http_status == 429 || (http_status >= 500 && http_status < 600))
        return MP_UNAVAILABLE;
    if (http_status == 400 || http_status == 401 || http_status == 403)
        return MP_DENIED;
    /*
     * 404 means an unknown client id or login handle: our configuration or
     * protocol state is wrong, not the user's credentials.  3xx (never
     * followed), 1xx and other 4xx are nothing Medplum says either.
     */
    return MP_ERROR;
}

bool mp_status_allows_offline(mp_status st)
{
    return st == MP_UNAVAILABLE;
}
