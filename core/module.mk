# core: the shared library of small modules (static, PIC) linked into
# pam_medplum.so and medplumctl.  nss_medplum links only the libc-only cache
# reader objects (see nss_medplum/module.mk), never this whole archive.

CORE_SRCS := $(filter-out $(NSS_ONLY_SRCS),$(wildcard core/*.c))
CORE_OBJS := $(patsubst %.c,$(O)/%.o,$(CORE_SRCS))
CORE_LIB := $(O)/libmpcore.a
CORE_LIBS := $(CURL_LIBS) $(CJSON_LIBS) -lcrypt

$(CORE_LIB): $(CORE_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

ALL_TARGETS += $(CORE_LIB)
