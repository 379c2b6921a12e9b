// The heap census of scripts/heapcensus.py: appended to py/gc.c of a diagnostic 32-bit MicroPython build
// (never the one the tests run), reached as micropython.mem_info(2). One pass over the GC heap after a
// collection: every allocated block is counted under the type of the object it holds (classes by name, so
// instances of each firmware class show up), or, for the untyped blocks, under what points at it: bytecode (a
// function's), the name pools and the names' text, child tables, dict tables, a module's constant table,
// instance member tables, list arrays, str/bytes text, bytearray data; the rest is "raw(other)". The heap's
// classes are listed one by one ("CENSUS class NAME"). Lines: "CENSUS <kind> <count> <bytes>"; with
// FM_CENSUS_STR set in the environment also "CENSUS_STR <len> <first 40 characters>" for each str object; with
// FM_CENSUS_OBJ "CENSUS_INST <class> <alloc> <used>" for each instance of a Python class (its member table's
// slots: 8 bytes each on 32-bit), "CENSUS_DICT <alloc> <used>" for each dict and "CENSUS_GEN <function> <n_state>
// <bytes>" for each coroutine (a generator instance: its frame).
#include <stdlib.h>
#include "py/objfun.h"
#include "py/qstr.h"
#include "py/objstr.h"
#include "py/objlist.h"
#include "py/objtype.h"
#include "py/objarray.h"
#include "py/bc.h"
// py/objgenerator.c's generator instance (its struct is private to that file): the same layout
typedef struct { mp_obj_base_t base; mp_obj_t pend_exc; mp_code_state_t code_state; } cen_gen_t;
extern char __executable_start;
extern char _end;
#define CEN_NT 400
static uint8_t cen_mark[1 << 16]; // 0 raw, 1 bytecode, 2 qstr pool, 3 qstr chunk, 4 child table, 5 dict/map table, 6 const table,
// 7 instance member table, 8 list items, 9 str/bytes data, 10 bytearray data
static const void *cen_types[CEN_NT];
static size_t cen_cnt[CEN_NT], cen_bytes[CEN_NT];
static size_t cen_len(mp_state_mem_area_t *area, size_t bl) {
    size_t total = area->gc_alloc_table_byte_len * BLOCKS_PER_ATB;
    size_t n = 1;
    while (bl + n < total && ATB_GET_KIND(area, bl + n) == AT_TAIL) {
        n++;
    }
    return n;
}
static bool cen_in_heap(mp_state_mem_area_t *area, const void *p) {
    return p >= (void *)area->gc_pool_start && p < (void *)area->gc_pool_end;
}
static bool cen_is_type(mp_state_mem_area_t *area, const void *t) {
    if (t == NULL || ((uintptr_t)t & 3)) {
        return false;
    }
    bool ok = cen_in_heap(area, t) || (t >= (void *)&__executable_start && t < (void *)&_end);
    if (!ok) {
        return false;
    }
    return ((const mp_obj_base_t *)t)->type == &mp_type_type;
}
static void cen_mark_ptr(mp_state_mem_area_t *area, const void *p, uint8_t kind) {
    if (!cen_in_heap(area, p)) {
        return;
    }
    size_t bl = ((const byte *)p - area->gc_pool_start) / BYTES_PER_BLOCK;
    while (bl > 0 && ATB_GET_KIND(area, bl) == AT_TAIL) {
        bl--;
    }
    if (bl < sizeof(cen_mark) && ATB_GET_KIND(area, bl) == AT_HEAD && cen_mark[bl] == 0) {
        cen_mark[bl] = kind;
    }
}
void gc_census(const mp_print_t *print) {
    GC_ENTER();
    mp_state_mem_area_t *area = &MP_STATE_MEM(area);
    size_t total = area->gc_alloc_table_byte_len * BLOCKS_PER_ATB;
    memset(cen_mark, 0, sizeof(cen_mark));
    bool strs = getenv("FM_CENSUS_STR") != NULL;
    bool objs = getenv("FM_CENSUS_OBJ") != NULL;
    size_t nt = 0;
    for (const qstr_pool_t *pool = MP_STATE_VM(last_pool); pool != NULL; pool = pool->prev) {
        cen_mark_ptr(area, pool, 2);
        for (size_t i = 0; i < pool->len; i++) {
            cen_mark_ptr(area, pool->qstrs[i], 3);
        }
    }
    // pass 1: typed objects point at their raw parts
    for (size_t bl = 0; bl < total; bl++) {
        if (ATB_GET_KIND(area, bl) != AT_HEAD) {
            continue;
        }
        void **ptr = (void **)(area->gc_pool_start + bl * BYTES_PER_BLOCK);
        const mp_obj_type_t *t = *ptr;
        if (!cen_is_type(area, t)) {
            continue;
        }
        if (t == &mp_type_fun_bc || t == &mp_type_gen_wrap) {
            mp_obj_fun_bc_t *f = (mp_obj_fun_bc_t *)ptr;
            cen_mark_ptr(area, f->bytecode, 1);
            cen_mark_ptr(area, f->child_table, 4);
            if (cen_in_heap(area, f->context)) {
                cen_mark_ptr(area, f->context->constants.qstr_table, 6);
                cen_mark_ptr(area, f->context->constants.obj_table, 6);
            }
        } else if (t == &mp_type_gen_instance && objs) {
            extern qstr mp_obj_fun_bc_get_name(const mp_obj_fun_bc_t *fun);
            mp_code_state_t *cs = &((cen_gen_t *)ptr)->code_state;
            mp_printf(print, "CENSUS_GEN %q %u %u\n", mp_obj_fun_bc_get_name(cs->fun_bc), (uint)cs->n_state,
                (uint)(cen_len(area, bl) * BYTES_PER_BLOCK));
        } else if (t == &mp_type_dict) {
            cen_mark_ptr(area, ((mp_obj_dict_t *)ptr)->map.table, 5);
            if (objs) {
                mp_printf(print, "CENSUS_DICT %u %u\n", (uint)((mp_obj_dict_t *)ptr)->map.alloc, (uint)((mp_obj_dict_t *)ptr)->map.used);
            }
        } else if (t == &mp_type_list) {
            cen_mark_ptr(area, ((mp_obj_list_t *)ptr)->items, 8);
        } else if (t == &mp_type_str || t == &mp_type_bytes) {
            cen_mark_ptr(area, ((mp_obj_str_t *)ptr)->data, 9);
        } else if (t == &mp_type_bytearray) {
            cen_mark_ptr(area, ((mp_obj_array_t *)ptr)->items, 10);
        } else if (cen_in_heap(area, t)) { // a class made by Python code: its instances are mp_obj_instance_t
            cen_mark_ptr(area, ((mp_obj_instance_t *)ptr)->members.table, 7);
            if (objs) {
                mp_printf(print, "CENSUS_INST %s %u %u\n", qstr_str(t->name), (uint)((mp_obj_instance_t *)ptr)->members.alloc, (uint)((mp_obj_instance_t *)ptr)->members.used);
            }
        }
    }
    size_t rb[11] = {0}, rc[11] = {0};
    size_t hist[8] = {0};
    for (size_t bl = 0; bl < total; bl++) {
        if (ATB_GET_KIND(area, bl) != AT_HEAD) {
            continue;
        }
        size_t n = cen_len(area, bl);
        void **ptr = (void **)(area->gc_pool_start + bl * BYTES_PER_BLOCK);
        const mp_obj_type_t *t = *ptr;
        if (cen_is_type(area, t)) {
            if (t == &mp_type_type) {
                mp_printf(print, "CENSUS class %s\n", qstr_str(((mp_obj_type_t *)ptr)->name));
            }
            if (t == &mp_type_str && strs) {
                mp_obj_str_t *o = (mp_obj_str_t *)ptr;
                mp_printf(print, "CENSUS_STR %u %.*s\n", (uint)o->len, (int)(o->len < 40 ? o->len : 40), o->data);
            }
            size_t i;
            for (i = 0; i < nt && cen_types[i] != t; i++) {
            }
            if (i == nt && nt < CEN_NT) {
                cen_types[nt++] = t;
            }
            if (i < CEN_NT) {
                cen_cnt[i]++;
                cen_bytes[i] += n * BYTES_PER_BLOCK;
            }
        } else {
            uint8_t k = bl < sizeof(cen_mark) ? cen_mark[bl] : 0;
            rb[k] += n * BYTES_PER_BLOCK;
            rc[k]++;
            if (k == 0) {
                size_t b = n * BYTES_PER_BLOCK, h = 0;
                while (b > 16 && h < 7) {
                    b >>= 1;
                    h++;
                }
                hist[h] += n * BYTES_PER_BLOCK;
            }
        }
    }
    static const char *kn[11] = {"raw(other)", "bytecode", "qstr_pool", "qstr_chunk", "child_table", "map_table", "const_table", "instance_members", "list_items", "str_data", "bytearray_data"};
    for (int k = 0; k < 11; k++) {
        mp_printf(print, "CENSUS %s %u %u\n", kn[k], (uint)rc[k], (uint)rb[k]);
    }
    mp_printf(print, "CENSUS rawhist16..2048+ %u %u %u %u %u %u %u %u\n", (uint)hist[0], (uint)hist[1], (uint)hist[2], (uint)hist[3], (uint)hist[4], (uint)hist[5], (uint)hist[6], (uint)hist[7]);
    for (size_t i = 0; i < nt; i++) {
        const mp_obj_type_t *t = cen_types[i];
        mp_printf(print, "CENSUS type %s %u %u\n", qstr_str(t->name), (uint)cen_cnt[i], (uint)cen_bytes[i]);
        cen_cnt[i] = cen_bytes[i] = 0;
    }
    GC_EXIT();
}
