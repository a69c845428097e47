"""The pieces of bench/gpu/bench.py that run without a GPU: ncu's CSV
parsed into DRAM and L2 read bytes, and a row of the table with them."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "bench", "gpu"))
import bench  # noqa: E402

HEAD = ('"ID","Process ID","Process Name","Host Name","Kernel Name",'
        '"Context","Stream","Section Name","Metric Name","Metric Unit",'
        '"Metric Value"')


def metric(kernel, name, unit, value):
    return ('"0","1","nora-exec","gpu","%s","1","7","Command line profiler '
            'metrics","%s","%s","%s"' % (kernel, name, unit, value))


text = "\n".join([
    "==PROF== Connected to process 1",
    HEAD,
    metric("nora_fused_step_0", "dram__bytes_read.sum", "byte",
           "1,048,576"),
    metric("nora_fused_step_0", "dram__bytes_write.sum", "byte", "524288"),
    metric("nora_fused_step_0", "lts__t_sectors_srcunit_tex_op_read.sum",
           "sector", "65,536"),
    # A second kernel of the same call adds to the sums.
    metric("nora_finish_0", "dram__bytes_read.sum", "byte", "1024"),
    "==PROF== Disconnected from process 1",
])
got = bench.parse_ncu_csv(text)
print("dram %s l2_read %s" % (got["dram"], got["l2_read"]))
# No metric lines (ncu failed): nothing, not zero.
print("empty %s" % bench.parse_ncu_csv("==ERROR== no kernels profiled"))

row = {"T": 2048, "M": 512, "N": 256, "a": 1.0, "b": 3.0, "c": 2.0,
       "exact_gemm": True, "e": 1.25, "e_simt": None, "err": 1e-6,
       "ncu": got, "d": None, "d_err": None, "variants": {}}
table = bench.render([row], "test", "0", 5, 1000.0)
header, _, line = table.splitlines()[4:7]
cells = dict(zip([h.strip() for h in header.split("|")],
                 [c.strip() for c in line.split("|")]))
for key in ("(e)/(a)", "DRAM B/elem (e)", "L2 read B/elem (e)"):
    print("%s: %s" % (key, cells[key]))
print("columns %d %d" % (header.count("|"), line.count("|")))
