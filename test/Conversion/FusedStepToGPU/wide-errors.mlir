// mainloop=wgmma-wide takes whole tiles only, as wgmma-tall: each
// consumer holds a whole 128 x 128 tile (128 accumulators a thread), the
// two side by side in a 128 x 256 CTA tile.
// RUN: nora-opt %s --nora-fused-step-to-gpu=mainloop=wgmma-wide -split-input-file -verify-diagnostics
// Its stages hold 128 rows of dy and 256 columns of x (48 KiB at 64
// tokens), and its ring may take 144 KiB beside the parked U; it is an
// sm_90a mainloop.
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma-wide ring-stages=4" 2>&1 | FileCheck %s --check-prefix=RING4
// RING4: error: nora-fused-step-to-gpu: 4 stages of 64 tokens take 192 KiB of shared memory (at most 144 KiB with wgmma-wide, whose stages hold 256 columns of x and whose parked U takes 64: 12 stages of 16 tokens, 6 of 32, 3 of 64)
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma-wide stage-tokens=80" 2>&1 | FileCheck %s --check-prefix=TOK80
// TOK80: error: nora-fused-step-to-gpu: 3 stages of 80 tokens take 180 KiB of shared memory (at most 144 KiB
// RUN: not nora-opt %s --nora-gpu-pipeline="chip=sm_80 mainloop=wgmma-wide" 2>&1 | FileCheck %s --check-prefix=WIDE80
// WIDE80: nora-gpu-pipeline: mainloop=wgmma-wide needs chip=sm_90a (wgmma is a Hopper instruction)
// 6 stages of 32 tokens are 144 KiB: allowed.
// RUN: nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma-wide ring-stages=6 stage-tokens=32" -split-input-file -verify-diagnostics

// 136 x 200: a partial row block and column tile.
func.func @partial(%dy: tensor<16x136xbf16>, %x: tensor<16x200xbf16>, %w: tensor<136x200xf32>,
                   %m: tensor<136x200xf32>, %lr: f32, %wd: f32) -> (tensor<136x200xf32>, tensor<136x200xf32>) {
  // expected-error @+1 {{cannot be lowered with mainloop=wgmma-wide: it needs rows and columns that are multiples of 128, whole tiles (136 x 200 has partial ones; wgmma-ws takes them)}}
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

// -----

// f32 inputs: tensor cores only.
func.func @f32(%dy: tensor<16x128xf32>, %x: tensor<16x128xf32>, %w: tensor<128x128xf32>,
               %m: tensor<128x128xf32>, %lr: f32, %wd: f32) -> (tensor<128x128xf32>, tensor<128x128xf32>) {
  // expected-error @+1 {{cannot be lowered with mainloop=wgmma-wide: the tensor-core mainloops need bf16 or f16 for both dy and x}}
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<16x128xf32>) x(%x : tensor<16x128xf32>)
      w(%w : tensor<128x128xf32>) m(%m : tensor<128x128xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<128x128xf32>, %w0: tensor<128x128xf32>, %m0: tensor<128x128xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.9 : f32} : tensor<128x128xf32>, tensor<128x128xf32>
    %d = nora.row_normalize %u : tensor<128x128xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<128x128xf32>, tensor<128x128xf32>
    nora.yield %w1, %m1 : tensor<128x128xf32>, tensor<128x128xf32>
  }
  return %wn, %mn : tensor<128x128xf32>, tensor<128x128xf32>
}
