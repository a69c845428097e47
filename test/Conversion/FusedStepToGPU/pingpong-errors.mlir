// mainloop=wgmma-pingpong takes whole tiles only: its consumers hold a
// whole tile (128 accumulators a thread), and ptxas spilled with the
// partial tiles' range predicates.
// RUN: nora-opt %s --nora-fused-step-to-gpu=mainloop=wgmma-pingpong -split-input-file -verify-diagnostics
// The ring may take 128 KiB with ping-pong (its parked U takes 64 more);
// and it is an sm_90a mainloop.
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma-pingpong ring-stages=5" 2>&1 | FileCheck %s --check-prefix=RING5
// RING5: error: nora-fused-step-to-gpu: 5 stages of 64 tokens take 160 KiB of shared memory (at most 128 KiB with wgmma-pingpong, whose parked U takes 64: 16 stages of 16 tokens, 8 of 32, 4 of 64)
// RUN: not nora-opt %s --nora-gpu-pipeline="chip=sm_80 mainloop=wgmma-pingpong" 2>&1 | FileCheck %s --check-prefix=PP80
// PP80: nora-gpu-pipeline: mainloop=wgmma-pingpong needs chip=sm_90a (wgmma is a Hopper instruction)
// 8 stages of 32 tokens are 128 KiB: allowed.
// RUN: nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma-pingpong ring-stages=8 stage-tokens=32" -split-input-file -verify-diagnostics

// 136 x 200: a partial row block and column tile.
func.func @partial(%dy: tensor<16x136xbf16>, %x: tensor<16x200xbf16>, %w: tensor<136x200xf32>,
                   %m: tensor<136x200xf32>, %lr: f32, %wd: f32) -> (tensor<136x200xf32>, tensor<136x200xf32>) {
  // expected-error @+1 {{cannot be lowered with mainloop=wgmma-pingpong: it needs rows and columns that are multiples of 128, whole tiles (136 x 200 has partial ones; wgmma-ws takes them)}}
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<16x136xbf16>) x(%x : tensor<16x200xbf16>)
      w(%w : tensor<136x200xf32>) m(%m : tensor<136x200xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<136x200xf32>, %w0: tensor<136x200xf32>, %m0: tensor<136x200xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.9 : f32} : tensor<136x200xf32>, tensor<136x200xf32>
    %d = nora.row_normalize %u : tensor<136x200xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<136x200xf32>, tensor<136x200xf32>
    nora.yield %w1, %m1 : tensor<136x200xf32>, tensor<136x200xf32>
  }
  return %wn, %mn : tensor<136x200xf32>, tensor<136x200xf32>
}
