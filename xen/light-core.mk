# xen/light-core.mk: read after Xen's tools/libs/light/Makefile by xen.mk
#   make -C tools/libs/light -f Makefile -f .../xen/light-core.mk \
#        XL_CORE_ARCHIVE=/abs/path/libfoo.a [XL_CORE_LIBS='-lm ...']
# in a tree where xen/light-core.patch has taken libxl_event.o and
# libxl_fork.o out of OBJS-y.  LDLIBS is what both libxenlight.so.4.17.0
# (tools/libs/libs.mk) and libxenlight_test.so (the light Makefile) are
# linked with, after their objects; Xen's test programs get the core through
# libxenlight_test.so.  --whole-archive keeps every member, so public
# functions that nothing inside libxl calls are still exported (with
# VERS_4.17.0, from libxenlight.map).
ifeq ($(XL_CORE_ARCHIVE),)
$(error XL_CORE_ARCHIVE (the static archive replacing libxl_event.o and libxl_fork.o) is not set)
endif
ifneq ($(filter libxl_event.o libxl_fork.o,$(OBJS-y)),)
$(error libxl_event.o / libxl_fork.o are still in OBJS-y: apply xen/light-core.patch first)
endif
LDLIBS += -Wl,--whole-archive $(XL_CORE_ARCHIVE) -Wl,--no-whole-archive $(XL_CORE_LIBS)
