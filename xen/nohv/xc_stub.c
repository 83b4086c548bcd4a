/*
 * xc_stub.c: test-only LD_PRELOAD stand-in for the parts of libxenctrl
 * that libxl and xl call, so that they run on a machine without a Xen
 * hypervisor (no /dev/xen/privcmd).
 *
 * The "host" it describes: Xen 4.17, 4 CPUs (2 cores x 2 threads, one
 * socket), one NUMA node, 4 GiB of RAM, and one domain: dom0 (2 vCPUs,
 * 1 GiB, running).  Domain ids other than 0 do not exist.
 *
 * The handle returned by xc_interface_open is a dummy: any libxenctrl
 * function not defined here still goes to the real library, which will
 * fail or crash on it.  Every definition carries version node VERS_4.17.0
 * (see xc_stub.map) so it interposes on libxenctrl.so.4.17's versioned
 * symbols.
 *
 * Build: gcc -shared -fPIC -D__XEN_TOOLS__ -I<tools/include> \
 *            -Wl,--version-script=xc_stub.map -o libxc_stub.so xc_stub.c
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xenctrl.h>

#define STUB_NR_CPUS      4
#define STUB_NR_NODES     1
#define STUB_TOTAL_PAGES  (4ULL << 18)  /* 4 GiB of 4 KiB pages */
#define STUB_FREE_PAGES   (3ULL << 18)
#define STUB_DOM0_PAGES   (1ULL << 18)

/* Only its address matters. */
static char stub_handle[4096] __attribute__((aligned(64)));

xc_interface *xc_interface_open(xentoollog_logger *logger,
                                xentoollog_logger *dombuild_logger,
                                unsigned open_flags)
{
    (void)logger; (void)dombuild_logger; (void)open_flags;
    return (xc_interface *)stub_handle;
}

int xc_interface_close(xc_interface *xch)
{
    (void)xch;
    return 0;
}

int xc_version(xc_interface *xch, int cmd, void *arg)
{
    (void)xch;
    switch (cmd) {
    case XENVER_version:
        return (4 << 16) | 17;
    case XENVER_extraversion:
        snprintf(arg, sizeof(xen_extraversion_t), ".0-nohv");
        return 0;
    case XENVER_compile_info: {
        xen_compile_info_t *ci = arg;
        memset(ci, 0, sizeof(*ci));
        snprintf(ci->compiler, sizeof(ci->compiler), "gcc");
        snprintf(ci->compile_by, sizeof(ci->compile_by), "nohv");
        snprintf(ci->compile_domain, sizeof(ci->compile_domain), "localdomain");
        snprintf(ci->compile_date, sizeof(ci->compile_date), "Thu Jan  1 00:00:00 UTC 1970");
        return 0;
    }
    case XENVER_capabilities:
        snprintf(arg, sizeof(xen_capabilities_info_t),
                 "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64");
        return 0;
    case XENVER_changeset:
        snprintf(arg, sizeof(xen_changeset_info_t), "nohv stub");
        return 0;
    case XENVER_platform_parameters: {
        xen_platform_parameters_t *pp = arg;
        pp->virt_start = 0xffff800000000000ULL;
        return 0;
    }
    case XENVER_get_features: {
        xen_feature_info_t *fi = arg;
        fi->submap = 0;
        return 0;
    }
    case XENVER_pagesize:
        return 4096;
    case XENVER_commandline:
        snprintf(arg, sizeof(xen_commandline_t), "placeholder");
        return 0;
    case XENVER_build_id:
    default:
        errno = ENOSYS;
        return -1;
    }
}

int xc_get_max_cpus(xc_interface *xch) { (void)xch; return STUB_NR_CPUS; }
int xc_get_online_cpus(xc_interface *xch) { (void)xch; return STUB_NR_CPUS; }
int xc_get_max_nodes(xc_interface *xch) { (void)xch; return STUB_NR_NODES; }
int xc_get_cpumap_size(xc_interface *xch) { (void)xch; return (STUB_NR_CPUS + 7) / 8; }
int xc_get_nodemap_size(xc_interface *xch) { (void)xch; return (STUB_NR_NODES + 7) / 8; }

int xc_physinfo(xc_interface *xch, xc_physinfo_t *info)
{
    (void)xch;
    memset(info, 0, sizeof(*info));
    info->threads_per_core = 2;
    info->cores_per_socket = 2;
    info->nr_cpus = STUB_NR_CPUS;
    info->max_cpu_id = STUB_NR_CPUS - 1;
    info->nr_nodes = STUB_NR_NODES;
    info->max_node_id = STUB_NR_NODES - 1;
    info->cpu_khz = 2000000;
    info->capabilities = XEN_SYSCTL_PHYSCAP_hvm | XEN_SYSCTL_PHYSCAP_pv;
    info->total_pages = STUB_TOTAL_PAGES;
    info->free_pages = STUB_FREE_PAGES;
    info->max_mfn = STUB_TOTAL_PAGES - 1;
    return 0;
}

int xc_cputopoinfo(xc_interface *xch, unsigned *max_cpus, xc_cputopo_t *cputopo)
{
    (void)xch;
    if (cputopo) {
        unsigned n = *max_cpus < STUB_NR_CPUS ? *max_cpus : STUB_NR_CPUS;
        for (unsigned i = 0; i < n; i++) {
            cputopo[i].core = i / 2;
            cputopo[i].socket = 0;
            cputopo[i].node = 0;
        }
    }
    *max_cpus = STUB_NR_CPUS;
    return 0;
}

int xc_numainfo(xc_interface *xch, unsigned *max_nodes,
                xc_meminfo_t *meminfo, uint32_t *distance)
{
    (void)xch;
    if (meminfo && *max_nodes >= 1) {
        meminfo[0].memsize = STUB_TOTAL_PAGES * 4096;
        meminfo[0].memfree = STUB_FREE_PAGES * 4096;
    }
    if (distance && *max_nodes >= 1)
        distance[0] = 10;
    *max_nodes = STUB_NR_NODES;
    return 0;
}

long xc_sharing_freed_pages(xc_interface *xch) { (void)xch; return 0; }
long xc_sharing_used_frames(xc_interface *xch) { (void)xch; return 0; }

int xc_sched_id(xc_interface *xch, int *sched_id)
{
    (void)xch;
    *sched_id = XEN_SCHEDULER_CREDIT2;
    return 0;
}

static void fill_dom0(xc_domaininfo_t *di)
{
    memset(di, 0, sizeof(*di));
    di->domain = 0;
    di->flags = XEN_DOMINF_running;
    di->tot_pages = STUB_DOM0_PAGES;
    di->max_pages = STUB_DOM0_PAGES;
    di->shared_info_frame = 0;
    di->cpu_time = 1000000000ULL;
    di->nr_online_vcpus = 2;
    di->max_vcpu_id = 1;
    di->ssidref = 0;
    di->cpupool = 0;
}

int xc_domain_getinfolist(xc_interface *xch, uint32_t first_domain,
                          unsigned int max_domains, xc_domaininfo_t *info)
{
    (void)xch;
    if (first_domain > 0 || max_domains == 0)
        return 0;
    fill_dom0(&info[0]);
    return 1;
}

int xc_domain_getinfo(xc_interface *xch, uint32_t first_domid,
                      unsigned int max_doms, xc_dominfo_t *info)
{
    (void)xch;
    if (first_domid > 0 || max_doms == 0)
        return 0;
    memset(info, 0, sizeof(*info));
    info->domid = 0;
    info->running = 1;
    info->nr_pages = STUB_DOM0_PAGES;
    info->max_memkb = STUB_DOM0_PAGES * 4;
    info->cpu_time = 1000000000ULL;
    info->nr_online_vcpus = 2;
    info->max_vcpu_id = 1;
    return 1;
}


/* XSM/FLASK is not enabled on this "host" (as on a default Xen build). */
int xc_flask_sid_to_context(xc_interface *xch, int sid, char *buf, uint32_t size)
{
    (void)xch; (void)sid; (void)buf; (void)size;
    errno = ENOSYS;
    return -1;
}

/* Every CPU is in cpupool 0: no free CPUs.  The caller frees the map. */
xc_cpumap_t xc_cpupool_freeinfo(xc_interface *xch)
{
    (void)xch;
    return calloc(1, (STUB_NR_CPUS + 7) / 8);
}

/* One cpupool, 0, with every CPU and dom0, scheduler credit2. */
xc_cpupoolinfo_t *xc_cpupool_getinfo(xc_interface *xch, uint32_t poolid)
{
    (void)xch;
    if (poolid > 0) {
        errno = ENOENT;
        return NULL;
    }
    xc_cpupoolinfo_t *info = calloc(1, sizeof(*info));
    if (!info)
        return NULL;
    info->cpupool_id = 0;
    info->sched_id = XEN_SCHEDULER_CREDIT2;
    info->n_dom = 1;
    info->cpumap = calloc(1, (STUB_NR_CPUS + 7) / 8);
    if (!info->cpumap) {
        free(info);
        return NULL;
    }
    for (int i = 0; i < STUB_NR_CPUS; i++)
        info->cpumap[i / 8] |= 1 << (i % 8);
    return info;
}

void xc_cpupool_infofree(xc_interface *xch, xc_cpupoolinfo_t *info)
{
    (void)xch;
    if (info)
        free(info->cpumap);
    free(info);
}

/* No PCI device is attached to a NUMA node. */
int xc_pcitopoinfo(xc_interface *xch, unsigned num_devs,
                   physdev_pci_device_t *devs, uint32_t *nodes)
{
    (void)xch; (void)devs;
    for (unsigned i = 0; i < num_devs; i++)
        nodes[i] = XEN_INVALID_NODE_ID;
    return 0;
}

/* dom0's vCPUs: online, vCPU n on CPU n, affinity all CPUs. */
int xc_vcpu_getinfo(xc_interface *xch, uint32_t domid, uint32_t vcpu,
                    xc_vcpuinfo_t *info)
{
    (void)xch;
    if (domid != 0 || vcpu > 1) {
        errno = ESRCH;
        return -1;
    }
    memset(info, 0, sizeof(*info));
    info->vcpu = vcpu;
    info->online = 1;
    info->running = vcpu == 0;
    info->blocked = vcpu != 0;
    info->cpu_time = 500000000ULL;
    info->cpu = vcpu;
    return 0;
}

int xc_vcpu_getaffinity(xc_interface *xch, uint32_t domid, int vcpu,
                        xc_cpumap_t cpumap_hard, xc_cpumap_t cpumap_soft,
                        uint32_t flags)
{
    (void)xch; (void)flags;
    if (domid != 0 || vcpu < 0 || vcpu > 1) {
        errno = ESRCH;
        return -1;
    }
    for (int i = 0; i < STUB_NR_CPUS; i++) {
        if (cpumap_hard)
            cpumap_hard[i / 8] |= 1 << (i % 8);
        if (cpumap_soft)
            cpumap_soft[i / 8] |= 1 << (i % 8);
    }
    return 0;
}

int xc_sched_credit2_domain_get(xc_interface *xch, uint32_t domid,
                                struct xen_domctl_sched_credit2 *sdom)
{
    (void)xch;
    if (domid != 0) {
        errno = ESRCH;
        return -1;
    }
    sdom->weight = 256;
    sdom->cap = 0;
    return 0;
}

int xc_sched_credit2_params_get(xc_interface *xch, uint32_t cpupool_id,
                                struct xen_sysctl_credit2_schedule *schedule)
{
    (void)xch;
    if (cpupool_id != 0) {
        errno = ENOENT;
        return -1;
    }
    schedule->ratelimit_us = 1000;
    return 0;
}
