# nss_medplum: libnss_medplum.so.2 (passwd, group, initgroups from the cache).
# Links libc only: its own objects plus the libc-only cache reader, never
# $(CORE_LIB).  Tests, test tools and the benchmark live in tests/nss/.

NSS_MODULE := $(O)/libnss_medplum.so.2
NSS_SRCS := $(wildcard nss_medplum/*.c)
NSS_OBJS := $(patsubst %.c,$(O)/%.o,$(NSS_SRCS)) $(O)/core/mp_cache_reader.o

$(NSS_MODULE): $(NSS_OBJS) nss_medplum/nss_medplum.map
	$(CC) -shared -o $@ -Wl,-soname,libnss_medplum.so.2 $(NSS_OBJS) $(ALL_LDFLAGS) $(SO_DEFS) \
		-Wl,--version-script=nss_medplum/nss_medplum.map $(CFLAGS)

ALL_TARGETS += $(NSS_MODULE)

.PHONY: install-nss
install-nss: $(NSS_MODULE)
	install -d $(DESTDIR)$(LIBDIR)
	install -m 0644 $(NSS_MODULE) $(DESTDIR)$(LIBDIR)/libnss_medplum.so.2
INSTALL_TARGETS += install-nss

# ---- tests (tests/nss/) ---------------------------------------------------

NSS_TEST_O := $(O)/tests/nss
MKCACHE := $(NSS_TEST_O)/mkcache

$(MKCACHE): $(NSS_TEST_O)/mkcache.o $(NSS_TEST_O)/testlib.o $(CORE_LIB)
	$(CC) -o $@ $^ $(ALL_LDFLAGS) $(CFLAGS) $(CORE_LIBS)

NSS_TESTLIB := $(NSS_TEST_O)/testlib.o
NSS_DLOPEN_TEST := $(NSS_TEST_O)/test_nss_dlopen
CACHE_WRITER_TEST := $(NSS_TEST_O)/test_cache_writer

$(NSS_TEST_O)/test_%: $(NSS_TEST_O)/test_%.o $(NSS_TESTLIB) $(CORE_LIB)
	$(CC) -o $@ $< $(NSS_TESTLIB) $(CORE_LIB) $(ALL_LDFLAGS) $(CFLAGS) $(CMOCKA_LIBS) \
		$(CORE_LIBS) -ldl -pthread

NSS_TEST_BINS := $(MKCACHE) $(NSS_DLOPEN_TEST) $(CACHE_WRITER_TEST)
ALL_TARGETS += $(NSS_TEST_BINS)

.PHONY: check-nss-linkage check-nss-wrapper check-nss-dlopen check-cache-writer
check-nss-linkage: $(NSS_MODULE)
	tests/nss/linkage.sh $(NSS_MODULE)

check-nss-wrapper: $(NSS_MODULE) $(MKCACHE)
	tests/nss/nss_wrapper.sh $(NSS_MODULE) $(MKCACHE)

check-nss-dlopen: $(NSS_MODULE) $(NSS_DLOPEN_TEST)
	NSS_MEDPLUM_MODULE=$(abspath $(NSS_MODULE)) $(NSS_DLOPEN_TEST)

check-cache-writer: $(CACHE_WRITER_TEST)
	$(CACHE_WRITER_TEST)

# The same tests against a sanitizer build (its own tree, built by a
# sub-make) and under valgrind.  The ASan runtime must come first in
# LD_PRELOAD for uninstrumented programs (getent, id) loading the module.
NSS_SAN_O ?= build-asan
NSS_SAN_BINS = $(addprefix $(NSS_SAN_O)/,libnss_medplum.so.2 tests/nss/test_nss_dlopen \
	tests/nss/test_cache_writer tests/nss/mkcache)
NSS_LIBASAN = $(shell $(CC) -print-file-name=libasan.so)
NSS_SAN_ENV := UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1
NSS_VALGRIND := valgrind -q --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite

.PHONY: check-nss-asan check-nss-valgrind
check-nss-asan:
	@$(MAKE) --no-print-directory -s O=$(NSS_SAN_O) SANITIZE=address,undefined $(NSS_SAN_BINS)
	@rc=0; \
	$(NSS_SAN_ENV) NSS_MEDPLUM_MODULE=$(abspath $(NSS_SAN_O))/libnss_medplum.so.2 \
		$(NSS_SAN_O)/tests/nss/test_nss_dlopen || rc=1; \
	$(NSS_SAN_ENV) $(NSS_SAN_O)/tests/nss/test_cache_writer || rc=1; \
	NSS_TEST_PRELOAD=$(NSS_LIBASAN) ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1 \
		tests/nss/nss_wrapper.sh $(NSS_SAN_O)/libnss_medplum.so.2 $(NSS_SAN_O)/tests/nss/mkcache \
		|| rc=1; \
	exit $$rc

check-nss-valgrind: $(NSS_MODULE) $(NSS_TEST_BINS)
	@rc=0; \
	NSS_MEDPLUM_MODULE=$(abspath $(NSS_MODULE)) $(NSS_VALGRIND) $(NSS_DLOPEN_TEST) || rc=1; \
	$(NSS_VALGRIND) $(CACHE_WRITER_TEST) || rc=1; \
	NSS_TEST_WRAPPER="$(NSS_VALGRIND)" NSS_WRAPPER_DISABLE_DEEPBIND=1 \
		tests/nss/nss_wrapper.sh $(NSS_MODULE) $(MKCACHE) || rc=1; \
	exit $$rc

# libFuzzer on the reader (clang; FUZZ_SECONDS, default 10).
.PHONY: check-nss-fuzz
check-nss-fuzz: $(MKCACHE)
	@tests/nss/fuzz.sh $(NSS_TEST_O)/fuzz $(MKCACHE)

# make bench: lookups per second against glibc's files backend (not part of
# check; root gives the files comparison, see tests/nss/bench_nss.c).
NSS_BENCH := $(NSS_TEST_O)/bench_nss
$(NSS_BENCH): $(NSS_TEST_O)/bench_nss.o $(NSS_TESTLIB) $(CORE_LIB)
	$(CC) -o $@ $^ $(ALL_LDFLAGS) $(CFLAGS) $(CORE_LIBS) -ldl

.PHONY: bench-nss
bench: bench-nss
bench-nss: $(NSS_MODULE) $(NSS_BENCH)
	NSS_MEDPLUM_MODULE=$(abspath $(NSS_MODULE)) $(NSS_BENCH)

NSS_CHECK_SUITES := check-nss-linkage check-nss-wrapper check-nss-dlopen check-cache-writer \
	check-nss-asan check-nss-valgrind check-nss-fuzz
CHECK_SUITES += $(NSS_CHECK_SUITES)

# Runs only this component's suites.
.PHONY: check-nss
check-nss:
	@$(MAKE) --no-print-directory $(NSS_MODULE) $(NSS_TEST_BINS)
	@tests/run_suites.sh $(NSS_CHECK_SUITES)
