# pam_medplum: Linux logins against Medplum.  GNU make + pkg-config.
#
#   make            build everything into $(O)/ (default build/)
#   make check      install missing test dependencies (as root), run every test suite
#   make demo       a real PAM login against the bundled Medplum-compatible server
#   make bench      NSS lookup benchmarks (ratios against glibc's files backend)
#   make install    DESTDIR=... PREFIX=/usr (multiarch libdir)
#   make SANITIZE=address,undefined O=build-asan   sanitizer build
#
# Each component adds its own rules in <dir>/module.mk; this file holds only the
# shared flags and the top-level targets.

VERSION := 0.1.0

PKG_CONFIG ?= pkg-config
O ?= build
SANITIZE ?=

DEB_HOST_MULTIARCH ?= $(shell $(CC) -print-multiarch 2>/dev/null)
PREFIX ?= /usr
LIBDIR ?= $(PREFIX)/lib/$(DEB_HOST_MULTIARCH)
PAMDIR ?= $(LIBDIR)/security
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share
SYSCONFDIR ?= /etc
CONFIG_FILE ?= $(SYSCONFDIR)/medplum/pam_medplum.conf
CACHE_DIR ?= /var/lib/pam_medplum

PAM_CFLAGS := $(shell $(PKG_CONFIG) --cflags pam 2>/dev/null)
PAM_LIBS := $(shell $(PKG_CONFIG) --libs pam 2>/dev/null || echo -lpam)
CURL_CFLAGS := $(shell $(PKG_CONFIG) --cflags libcurl 2>/dev/null)
CURL_LIBS := $(shell $(PKG_CONFIG) --libs libcurl 2>/dev/null || echo -lcurl)
CJSON_CFLAGS := $(shell $(PKG_CONFIG) --cflags libcjson 2>/dev/null)
CJSON_LIBS := $(shell $(PKG_CONFIG) --libs libcjson 2>/dev/null || echo -lcjson)
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)

# Optimisation/debug flags are the caller's (dpkg-buildflags, rpm %optflags);
# warnings and hardening are ours and always on.
CFLAGS ?= -O2 -g
WARN_CFLAGS := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wformat-security \
	-Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wvla
MP_CFLAGS := -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden -fstack-protector-strong \
	$(WARN_CFLAGS) -Icore $(PAM_CFLAGS) $(CURL_CFLAGS) $(CJSON_CFLAGS) \
	-DMP_VERSION='"$(VERSION)"' \
	-DMP_DEFAULT_CONFIG='"$(CONFIG_FILE)"' \
	-DMP_DEFAULT_CACHE_DIR='"$(CACHE_DIR)"'
MP_LDFLAGS := -Wl,-z,relro,-z,now -Wl,--as-needed

ifneq ($(SANITIZE),)
  CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=$(SANITIZE) -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=$(SANITIZE)
  SO_DEFS :=
else
  MP_CFLAGS += -D_FORTIFY_SOURCE=2
  SO_DEFS := -Wl,-z,defs
endif

ALL_CFLAGS = $(MP_CFLAGS) $(CPPFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(MP_LDFLAGS) $(LDFLAGS)

# Filled in by the module.mk fragments.
ALL_TARGETS :=
CHECK_SUITES :=
INSTALL_TARGETS :=
CLEAN_FILES :=

.PHONY: all check demo bench install clean deps deps-demo format cppcheck
all:

include core/module.mk
include pam_medplum/module.mk
-include nss_medplum/module.mk
-include medplumctl/module.mk
include tests/module.mk
-include packaging/module.mk

all: $(ALL_TARGETS)

$(O)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find $(O) -name '*.d' -type f 2>/dev/null)

# Installs build and test dependencies with apt-get when something is missing
# (needs root; prints the command otherwise).
deps:
	@packaging/install-deps.sh --if-missing

# make demo needs much less (no ssh server, no packaging tools).
deps-demo:
	@packaging/install-deps.sh --if-missing --demo

check: deps
	@$(MAKE) --no-print-directory all
	@tests/run_suites.sh $(CHECK_SUITES)

install: all $(INSTALL_TARGETS)

format:
	clang-format -i $(shell git ls-files '*.c' '*.h')

cppcheck:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--std=c11 --inline-suppr -D_GNU_SOURCE -Icore \
		--suppress=missingIncludeSystem $(shell git ls-files '*.c')

clean:
	rm -rf build build-* $(CLEAN_FILES)
