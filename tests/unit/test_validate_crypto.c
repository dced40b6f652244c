/* User name, password, id and OTP checks; SHA-256, base64url and PKCE. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_crypto.h"
#include "mp_json.h"
#include "mp_secret.h"
#include "mp_validate.h"

static void usernames(void **state)
{
    const char *good[] = {"alice",   "a",  "_svc",    "bob.smith",
                          "carol-w", "x9", "a_b.c-d", "abcdefghijklmnopqrstuvwxyz012345"};
    const char *bad[] = {"",
                         "Alice",
                         "al:ice",
                         "al/ice",
                         "al ice",
                         "al\tice",
                         "al\nice",
                         "-alice",
                         ".alice",
                         "..",
                         ".",
                         "a..b",
                         "alice$",
                         "9lives",
                         "al\x01ice",
                         "\xc3\xa9lise",
                         "abcdefghijklmnopqrstuvwxyz0123456",
                         "a@b",
                         "a\\b"};

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(mp_is_valid_username(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(mp_is_valid_username(bad[i]));
    assert_false(mp_is_valid_username(NULL));
}

static void passwords(void **state)
{
    char big[MP_PASSWORD_MAX + 2];

    (void)state;
    assert_false(mp_is_acceptable_password(NULL));
    assert_false(mp_is_acceptable_password(""));
    assert_true(mp_is_acceptable_password(" "));
    assert_true(mp_is_acceptable_password("p\xc3\xa4ss \"w\\rd\""));
    memset(big, 'x', MP_PASSWORD_MAX);
    big[MP_PASSWORD_MAX] = '\0';
    assert_true(mp_is_acceptable_password(big));
    big[MP_PASSWORD_MAX] = 'x';
    big[MP_PASSWORD_MAX + 1] = '\0';
    assert_false(mp_is_acceptable_password(big));
    assert_true(mp_is_acceptable_password("tab\tinside"));
    assert_false(mp_is_acceptable_password("\b\n\r\177INCORRECT")); /* sshd's probe */
    assert_false(mp_is_acceptable_password("line\nbreak"));
    assert_false(mp_is_acceptable_password("del\177"));
}

static void ids_and_otp(void **state)
{
    char out[16];

    (void)state;
    assert_true(mp_is_uuid("ce04dfeb-96a9-49e7-abb8-098580eeed12"));
    assert_false(mp_is_uuid("ce04dfeb-96a9-49e7-abb8-098580eeed1"));
    assert_false(mp_is_uuid("ce04dfeb_96a9-49e7-abb8-098580eeed12"));
    assert_false(mp_is_uuid("../../../../etc/passwd/xxxxxxxxxxxxx"));
    assert_true(mp_normalize_otp(" 123 456 ", out, sizeof(out)));
    assert_string_equal(out, "123456");
    assert_false(mp_normalize_otp("12345", out, sizeof(out)));
    assert_false(mp_normalize_otp("12345a", out, sizeof(out)));
    assert_false(mp_normalize_otp("", out, sizeof(out)));
    assert_false(mp_normalize_otp("1234567890123456789", out, sizeof(out)));
}

static void hex(const uint8_t *d, char *out)
{
    for (int i = 0; i < MP_SHA256_LEN; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

/* FIPS 180-4 example vectors, including the two-block and 55/56/64-byte edges. */
static void sha256_vectors(void **state)
{
    struct {
        const char *in;
        const char *out;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
         "klmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    uint8_t d[MP_SHA256_LEN];
    char h[65];

    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        mp_sha256(v[i].in, strlen(v[i].in), d);
        hex(d, h);
        assert_string_equal(h, v[i].out);
    }
}

/* RFC 7636 appendix B. */
static void pkce_rfc7636_example(void **state)
{
    const char *verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    uint8_t d[MP_SHA256_LEN];
    char challenge[64];
    struct mp_pkce a, b;

    (void)state;
    mp_sha256(verifier, strlen(verifier), d);
    assert_int_equal(mp_base64url(d, sizeof(d), challenge, sizeof(challenge)), 43);
    assert_string_equal(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    assert_int_equal(mp_pkce_generate(&a), 0);
    assert_int_equal(mp_pkce_generate(&b), 0);
    assert_int_equal(strlen(a.verifier), 64);
    assert_int_equal(strlen(a.challenge), 43);
    assert_string_not_equal(a.verifier, b.verifier);
    assert_null(strpbrk(a.verifier, "+/="));
}

static void base64_padding(void **state)
{
    char out[16];

    (void)state;
    assert_int_equal(mp_base64((const uint8_t *)"a:b", 3, out, sizeof(out)), 4);
    assert_string_equal(out, "YTpi");
    assert_int_equal(mp_base64((const uint8_t *)"ab", 2, out, sizeof(out)), 4);
    assert_string_equal(out, "YWI=");
    assert_int_equal(mp_base64((const uint8_t *)"ab", 2, out, 4), 0); /* too small */
}

/* The contract's wait rule: extension, else diagnostics, else header, else 60. */
static void retry_after_rules(void **state)
{
    const char *ext = "{\"resourceType\":\"OperationOutcome\",\"issue\":[],\"extension\":[{\"url\":"
                      "\"https://medplum.com/fhir/StructureDefinition/rate-limit-reset\","
                      "\"valueUnsignedInt\":17}]}";
    const char *diag = "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"diagnostics\":"
                       "\"{\\\"msBeforeNext\\\":2500}\"}]}";

    (void)state;
    assert_int_equal(mp_retry_after(ext, strlen(ext), "\"requests\";r=0;t=5"), 17);
    assert_int_equal(mp_retry_after(diag, strlen(diag), NULL), 3);
    assert_int_equal(mp_retry_after("nope", 4, "\"requests\";r=0;t=33"), 33);
    assert_int_equal(mp_retry_after("nope", 4, NULL), 60);
    assert_int_equal(mp_retry_after("nope", 4, "\"requests\";r=0;t=999999"), 3600);
    /* found by fuzzing: a huge number must not overflow the conversion */
    {
        const char *huge = "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"diagnostics\":"
                           "\"{\\\"_msBeforeNext\\\":288888888888888888888001}\"}]}";
        assert_int_equal(mp_retry_after(huge, strlen(huge), NULL), 3600);
    }
}

static void error_texts(void **state)
{
    char t[64];
    const char *oo = "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"details\":{\"text\":"
                     "\"Profile not\\nactive\"}}]}";
    const char *oauth = "{\"error\":\"invalid_grant\",\"error_description\":\"Token revoked\"}";

    (void)state;
    assert_true(mp_error_text(oo, strlen(oo), t, sizeof(t)));
    assert_string_equal(t, "Profile not?active"); /* no newline reaches syslog */
    assert_true(mp_error_text(oauth, strlen(oauth), t, sizeof(t)));
    assert_string_equal(t, "Token revoked");
    assert_false(mp_error_text("<html>", 6, t, sizeof(t)));
    assert_false(mp_error_text("[]", 2, t, sizeof(t)));
}

/* Secret-holding text is printed into buffers of our own (no realloc). */
static void secret_printing(void **state)
{
    char *pw = malloc(3001), *text, *form;
    cJSON *root = cJSON_CreateObject();

    (void)state;
    assert_non_null(pw);
    memset(pw, '"', 3000); /* escapes to 6000 bytes: needs the larger buffers */
    pw[3000] = '\0';
    assert_non_null(cJSON_AddStringToObject(root, "password", pw));
    text = mp_json_print_secret(root);
    assert_non_null(text);
    assert_int_equal(strlen(text), strlen("{\"password\":\"\"}") + 6000);
    mp_secret_free(text);
    mp_json_delete_wiping(root);
    form = mp_secret_printf("a=%s&b=%d", "x y", 42);
    assert_string_equal(form, "a=x y&b=42");
    mp_secret_free(form);
    free(pw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(usernames),
        cmocka_unit_test(passwords),
        cmocka_unit_test(ids_and_otp),
        cmocka_unit_test(sha256_vectors),
        cmocka_unit_test(pkce_rfc7636_example),
        cmocka_unit_test(base64_padding),
        cmocka_unit_test(retry_after_rules),
        cmocka_unit_test(error_texts),
        cmocka_unit_test(secret_printing),
    };
    return cmocka_run_group_tests_name("validation and crypto", tests, NULL, NULL);
}
