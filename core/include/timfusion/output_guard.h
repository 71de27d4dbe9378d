// timfusion: tools never write over their own inputs (issue 27:
// `timfusion-fuse --ir D/ir --vis D/vis --output D/vis` replaced the visible
// images with fused ones).
//
// Paths are compared by file identity (std::filesystem::equivalent: same
// device and inode), so "D/vis", "D/./vis/", a symlink to it and a hard link
// to an input file are all caught, not only equal strings.
#pragma once
#include <string>
#include <vector>

namespace timfusion {

// Throws Error("<output>: ... is the input <input> ...") when `output` (a
// file or folder that may not exist yet) is the same file or folder as one
// of `inputs`. `what` names the output in the message ("output folder").
void refuse_output_over_inputs(const std::string& output, const std::vector<std::string>& inputs,
                               const std::string& what);

}  // namespace timfusion
