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

$(MKCACHE): $(NSS_TEST_O)/mkcache.o $(CORE_LIB)
	$(CC) -o $@ $< $(CORE_LIB) $(ALL_LDFLAGS) $(CFLAGS) $(CORE_LIBS)

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

NSS_CHECK_SUITES := check-nss-linkage check-nss-wrapper check-nss-dlopen check-cache-writer
CHECK_SUITES += $(NSS_CHECK_SUITES)

# Runs only this component's suites.
.PHONY: check-nss
check-nss:
	@$(MAKE) --no-print-directory $(NSS_MODULE) $(NSS_TEST_BINS)
	@tests/run_suites.sh $(NSS_CHECK_SUITES)
