# Builds and installs tokenbroker: the binaries (a release build), the systemd units (system and
# --user), the sysusers.d entry for the socket's group, the example configuration, shell
# completions and man pages.
#
#   make                      # release build
#   sudo make install         # into /usr/local (PREFIX), /etc (SYSCONFDIR)
#   make install DESTDIR=/tmp/root PREFIX=/usr
#
# After installing on a live system: systemd-sysusers, systemctl daemon-reload, then
# systemctl enable --now tokenbrokerd.socket tokenbrokerd.service
#
# CONFIGURATION=debug installs the debug build (the tests do, to reuse it). TESTING=1 builds with
# the test fault switches compiled in (scripts/systemd-test.sh only; never for production).
# BUILD=no installs what is already built without running swift build.

PREFIX        ?= /usr/local
BINDIR        ?= $(PREFIX)/bin
DATADIR       ?= $(PREFIX)/share
MANDIR        ?= $(DATADIR)/man
DOCDIR        ?= $(DATADIR)/doc/tokenbroker
SYSCONFDIR    ?= /etc
UNITDIR       ?= $(PREFIX)/lib/systemd/system
USERUNITDIR   ?= $(PREFIX)/lib/systemd/user
SYSUSERSDIR   ?= $(PREFIX)/lib/sysusers.d
BASHCOMPDIR   ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR    ?= $(DATADIR)/zsh/site-functions
FISHCOMPDIR   ?= $(DATADIR)/fish/vendor_completions.d
DESTDIR       ?=

SWIFT         ?= swift
CONFIGURATION ?= release
BUILD         ?= yes
TESTING       ?= 0
INSTALL       ?= install

PRODUCTS      := tokenbrokerd tokenctl livesim
COMPLETIONS   := tokenctl tokenbrokerd livesim

ifeq ($(TESTING),1)
SWIFT_ENV     := env TOKENBROKER_TESTING=1
else
SWIFT_ENV     := env -u TOKENBROKER_TESTING
endif

OUT           := .build/install
BIN_PATH       = $(shell $(SWIFT_ENV) $(SWIFT) build -c $(CONFIGURATION) --show-bin-path)
UNIT_SED      := -e 's|/usr/local/bin/|$(BINDIR)/|g' -e 's|/etc/tokenbroker/|$(SYSCONFDIR)/tokenbroker/|g'

.PHONY: all build generated install uninstall clean-install check-units

all: build

build:
ifeq ($(BUILD),yes)
	@for product in $(PRODUCTS); do \
		echo "swift build -c $(CONFIGURATION) --product $$product"; \
		$(SWIFT_ENV) $(SWIFT) build -c $(CONFIGURATION) --product $$product || exit 1; \
	done
endif

# Units with the install paths, completions and man pages, in $(OUT).
generated: build
	@rm -rf $(OUT) && mkdir -p $(OUT)/system $(OUT)/user $(OUT)/man $(OUT)/completions
	@bin="$(BIN_PATH)"; for product in $(PRODUCTS); do \
		test -x "$$bin/$$product" || { echo "missing $$bin/$$product: run make build" >&2; exit 1; }; \
	done
	sed $(UNIT_SED) systemd/tokenbrokerd.service > $(OUT)/system/tokenbrokerd.service
	sed $(UNIT_SED) systemd/tokenbrokerd.socket > $(OUT)/system/tokenbrokerd.socket
	sed $(UNIT_SED) systemd/user/tokenbrokerd.service > $(OUT)/user/tokenbrokerd.service
	sed $(UNIT_SED) systemd/user/tokenbrokerd.socket > $(OUT)/user/tokenbrokerd.socket
	@bin="$(BIN_PATH)"; for tool in $(COMPLETIONS); do \
		"$$bin/$$tool" --generate-completion-script bash > $(OUT)/completions/$$tool.bash && \
		"$$bin/$$tool" --generate-completion-script zsh > $(OUT)/completions/_$$tool && \
		"$$bin/$$tool" --generate-completion-script fish > $(OUT)/completions/$$tool.fish || exit 1; \
	done
	@scripts/make-man-pages.sh "$(BIN_PATH)" $(OUT)/man "$(SWIFT_ENV) $(SWIFT)" $(CONFIGURATION)

install: generated
	@if [ "$(TESTING)" = 1 ]; then echo "make install: TESTING=1: installing a build with test fault switches; never use it in production" >&2; fi
	@bin="$(BIN_PATH)"; for product in $(PRODUCTS); do \
		$(INSTALL) -D -m 0755 "$$bin/$$product" "$(DESTDIR)$(BINDIR)/$$product" || exit 1; \
	done
	$(INSTALL) -D -m 0644 $(OUT)/system/tokenbrokerd.service $(DESTDIR)$(UNITDIR)/tokenbrokerd.service
	$(INSTALL) -D -m 0644 $(OUT)/system/tokenbrokerd.socket $(DESTDIR)$(UNITDIR)/tokenbrokerd.socket
	$(INSTALL) -D -m 0644 $(OUT)/user/tokenbrokerd.service $(DESTDIR)$(USERUNITDIR)/tokenbrokerd.service
	$(INSTALL) -D -m 0644 $(OUT)/user/tokenbrokerd.socket $(DESTDIR)$(USERUNITDIR)/tokenbrokerd.socket
	$(INSTALL) -D -m 0644 systemd/sysusers.d/tokenbroker.conf $(DESTDIR)$(SYSUSERSDIR)/tokenbroker.conf
	$(INSTALL) -D -m 0644 config/tokenbroker.toml $(DESTDIR)$(DOCDIR)/tokenbroker.toml.example
	@# The configuration is the operator's: installed only where none exists yet.
	@if [ -e "$(DESTDIR)$(SYSCONFDIR)/tokenbroker/tokenbroker.toml" ]; then \
		echo "keeping $(DESTDIR)$(SYSCONFDIR)/tokenbroker/tokenbroker.toml"; \
	else \
		echo "$(INSTALL) -D -m 0644 config/tokenbroker.toml $(DESTDIR)$(SYSCONFDIR)/tokenbroker/tokenbroker.toml"; \
		$(INSTALL) -D -m 0644 config/tokenbroker.toml "$(DESTDIR)$(SYSCONFDIR)/tokenbroker/tokenbroker.toml"; \
	fi
	@for tool in $(COMPLETIONS); do \
		$(INSTALL) -D -m 0644 $(OUT)/completions/$$tool.bash "$(DESTDIR)$(BASHCOMPDIR)/$$tool" && \
		$(INSTALL) -D -m 0644 $(OUT)/completions/_$$tool "$(DESTDIR)$(ZSHCOMPDIR)/_$$tool" && \
		$(INSTALL) -D -m 0644 $(OUT)/completions/$$tool.fish "$(DESTDIR)$(FISHCOMPDIR)/$$tool.fish" || exit 1; \
	done
	@for page in $(OUT)/man/*.[0-9]; do \
		section=$${page##*.}; \
		$(INSTALL) -D -m 0644 "$$page" "$(DESTDIR)$(MANDIR)/man$$section/$${page##*/}" || exit 1; \
	done
	@echo "installed into $(DESTDIR)$(PREFIX); on a live system run: systemd-sysusers && systemctl daemon-reload"

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(PRODUCTS))
	rm -f $(DESTDIR)$(UNITDIR)/tokenbrokerd.service $(DESTDIR)$(UNITDIR)/tokenbrokerd.socket
	rm -f $(DESTDIR)$(USERUNITDIR)/tokenbrokerd.service $(DESTDIR)$(USERUNITDIR)/tokenbrokerd.socket
	rm -f $(DESTDIR)$(SYSUSERSDIR)/tokenbroker.conf
	rm -rf $(DESTDIR)$(DOCDIR)
	rm -f $(addprefix $(DESTDIR)$(BASHCOMPDIR)/,$(COMPLETIONS)) $(addprefix $(DESTDIR)$(ZSHCOMPDIR)/_,$(COMPLETIONS))
	rm -f $(addsuffix .fish,$(addprefix $(DESTDIR)$(FISHCOMPDIR)/,$(COMPLETIONS)))
	rm -f $(DESTDIR)$(MANDIR)/man8/tokenbrokerd.8 $(DESTDIR)$(MANDIR)/man1/tokenctl.1 $(DESTDIR)$(MANDIR)/man1/livesim.1
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/tokenbroker and the state in /var/lib/tokenbroker"

# The unit checks CI runs: unknown keys fail, and the exposure rating must stay at 1.2 or below.
check-units:
	scripts/check-units.sh
