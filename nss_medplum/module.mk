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

NSS_TEST_BINS := $(MKCACHE)
ALL_TARGETS += $(NSS_TEST_BINS)

.PHONY: check-nss-linkage check-nss-wrapper
check-nss-linkage: $(NSS_MODULE)
	tests/nss/linkage.sh $(NSS_MODULE)

check-nss-wrapper: $(NSS_MODULE) $(MKCACHE)
	tests/nss/nss_wrapper.sh $(NSS_MODULE) $(MKCACHE)

NSS_CHECK_SUITES := check-nss-linkage check-nss-wrapper
CHECK_SUITES += $(NSS_CHECK_SUITES)

# Runs only this component's suites (tests/module.mk currently resets
# CHECK_SUITES after the component fragments).
.PHONY: check-nss
check-nss:
	@$(MAKE) --no-print-directory $(NSS_MODULE) $(NSS_TEST_BINS)
	@tests/run_suites.sh $(NSS_CHECK_SUITES)
