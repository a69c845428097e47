// RUN: nora-opt %s --nora-fused-step-to-gpu=mainloop=mma-sync -split-input-file -verify-diagnostics
// RUN: not nora-opt %s --nora-fused-step-to-gpu=mainloop=wgmma -split-input-file 2>&1 | FileCheck %s --check-prefix=WGMMA
// WGMMA: cannot be lowered with mainloop=wgmma: the tensor-core mainloops need bf16 or f16 for both dy and x
// WGMMA: cannot be lowered with mainloop=wgmma: the tensor-core mainloops need rows and columns that are multiples of 8
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=mainloop=mma-sync allow-tf32=1" -split-input-file 2>&1 | FileCheck %s --check-prefix=TF32
// TF32: cannot be lowered with mainloop=mma-sync: the tf32 mainloop needs rows and columns that are multiples of 4 (16-byte cp.async chunks)
// RUN: not nora-opt %s --nora-fused-step-to-gpu=mainloop=tf32 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: not nora-opt %s --nora-gpu-pipeline="mainloop=tf32" 2>&1 | FileCheck %s --check-prefix=PIPELINE

// UNKNOWN: error: nora-fused-step-to-gpu: unknown mainloop 'tf32' (expected auto, simt, mma-sync, wgmma, wgmma-ws, wgmma-pingpong, wgmma-tall or wgmma-wide)
// PIPELINE: nora-gpu-pipeline: unsupported mainloop 'tf32' (auto, simt, mma-sync, wgmma, wgmma-ws, wgmma-pingpong, wgmma-tall or wgmma-wide)
// RUN: not nora-opt %s --nora-gpu-pipeline="chip=sm_80 mainloop=wgmma" 2>&1 | FileCheck %s --check-prefix=WGMMA80
// WGMMA80: nora-gpu-pipeline: mainloop=wgmma needs chip=sm_90a (wgmma is a Hopper instruction)
// RUN: not nora-opt %s --nora-gpu-pipeline="chip=sm_80 mainloop=wgmma-ws" 2>&1 | FileCheck %s --check-prefix=WS80
// WS80: nora-gpu-pipeline: mainloop=wgmma-ws needs chip=sm_90a (wgmma is a Hopper instruction)
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=ring-stages=8" 2>&1 | FileCheck %s --check-prefix=RINGML
// RINGML: error: nora-fused-step-to-gpu: ring-stages is an option of mainloop=wgmma-ws, wgmma-pingpong, wgmma-tall and wgmma-wide
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=stage-tokens=32" 2>&1 | FileCheck %s --check-prefix=TOKML
// TOKML: error: nora-fused-step-to-gpu: stage-tokens is an option of mainloop=wgmma-ws, wgmma-pingpong, wgmma-tall and wgmma-wide
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma-ws ring-stages=25" 2>&1 | FileCheck %s --check-prefix=RINGRANGE
// RINGRANGE: error: nora-fused-step-to-gpu: 25 stages of 64 tokens take 800 KiB of shared memory (at most 192 KiB: 24 stages of 16 tokens, 12 of 32, 6 of 64)
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma-ws ring-stages=7" 2>&1 | FileCheck %s --check-prefix=RING7
// RING7: error: nora-fused-step-to-gpu: 7 stages of 64 tokens take 224 KiB of shared memory (at most 192 KiB
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma-ws ring-stages=13 stage-tokens=32" 2>&1 | FileCheck %s --check-prefix=RING13
// RING13: error: nora-fused-step-to-gpu: 13 stages of 32 tokens take 208 KiB of shared memory
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=mainloop=wgmma-ws stage-tokens=24" 2>&1 | FileCheck %s --check-prefix=TOK24
// TOK24: error: nora-fused-step-to-gpu: stage-tokens=24 (expected a multiple of 16 up to 256, or 0 for 64)
// RUN: not nora-opt %s --nora-gpu-pipeline="chip=sm_90a mainloop=wgmma-ws stage-tokens=272" 2>&1 | FileCheck %s --check-prefix=TOKPIPE
// TOKPIPE: nora-gpu-pipeline: stage-tokens=272 (expected a multiple of 16 up to 256, or 0 for 64)
// RUN: not nora-opt %s "--nora-fused-step-to-gpu=l2-prefetch-tokens=-16" 2>&1 | FileCheck %s --check-prefix=PREFETCH
// PREFETCH: error: nora-fused-step-to-gpu: l2-prefetch-tokens=-16 (expected 0, no prefetch, or more)
// RUN: not nora-opt %s --nora-gpu-pipeline="l2-prefetch-tokens=-1" 2>&1 | FileCheck %s --check-prefix=PREFETCHPIPE
// PREFETCHPIPE: nora-gpu-pipeline: l2-prefetch-tokens=-1 (expected 0, no prefetch, or more)
// RUN: not nora-opt %s --nora-gpu-pipeline="chip=sm_90a ring-stages=1 mainloop=wgmma-ws" 2>&1 | FileCheck %s --check-prefix=RINGPIPE
// RINGPIPE: nora-gpu-pipeline: ring-stages=1 (expected 2 or more, or 0 for 4)
// RUN: not nora-opt %s --nora-fused-step-to-gpu=mainloop=wgmma-ws -split-input-file 2>&1 | FileCheck %s --check-prefix=WSPEC
// WSPEC: cannot be lowered with mainloop=wgmma-ws: the tensor-core mainloops need bf16 or f16 for both dy and x
// WSPEC: cannot be lowered with mainloop=wgmma-ws: the tensor-core mainloops need rows and columns that are multiples of 8

// mainloop=mma-sync asks for tensor cores; f32 inputs cannot have them
// unless allow-tf32 is set (exact f32 is the default).
func.func @f32_inputs(%dy: tensor<16x64xf32>, %x: tensor<16x64xf32>, %w: tensor<64x64xf32>,
                      %m: tensor<64x64xf32>, %lr: f32, %wd: f32) -> (tensor<64x64xf32>, tensor<64x64xf32>) {
  // expected-error @+1 {{cannot be lowered with mainloop=mma-sync: the tensor-core mainloops need bf16 or f16 for both dy and x (f32 inputs: allow-tf32)}}
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<16x64xf32>) x(%x : tensor<16x64xf32>)
      w(%w : tensor<64x64xf32>) m(%m : tensor<64x64xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<64x64xf32>, %w0: tensor<64x64xf32>, %m0: tensor<64x64xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.9 : f32} : tensor<64x64xf32>, tensor<64x64xf32>
    %d = nora.row_normalize %u : tensor<64x64xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<64x64xf32>, tensor<64x64xf32>
    nora.yield %w1, %m1 : tensor<64x64xf32>, tensor<64x64xf32>
  }
  return %wn, %mn : tensor<64x64xf32>, tensor<64x64xf32>
}

// -----

// 100 columns: a row of x is not a whole number of 16-byte chunks.
func.func @ragged_columns(%dy: tensor<16x64xbf16>, %x: tensor<16x100xbf16>, %w: tensor<64x100xf32>,
                          %m: tensor<64x100xf32>, %lr: f32, %wd: f32) -> (tensor<64x100xf32>, tensor<64x100xf32>) {
  // expected-error @+1 {{the tensor-core mainloops need rows and columns that are multiples of 8 (16-byte cp.async chunks)}}
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<16x64xbf16>) x(%x : tensor<16x100xbf16>)
      w(%w : tensor<64x100xf32>) m(%m : tensor<64x100xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<64x100xf32>, %w0: tensor<64x100xf32>, %m0: tensor<64x100xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.9 : f32} : tensor<64x100xf32>, tensor<64x100xf32>
    %d = nora.row_normalize %u : tensor<64x100xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<64x100xf32>, tensor<64x100xf32>
    nora.yield %w1, %m1 : tensor<64x100xf32>, tensor<64x100xf32>
  }
  return %wn, %mn : tensor<64x100xf32>, tensor<64x100xf32>
}

// -----

// f32 inputs with 102 columns: no tensor cores without allow-tf32, and
// with it a row of x is not a whole number of 16-byte chunks.
func.func @f32_ragged(%dy: tensor<16x64xf32>, %x: tensor<16x102xf32>, %w: tensor<64x102xf32>,
                      %m: tensor<64x102xf32>, %lr: f32, %wd: f32) -> (tensor<64x102xf32>, tensor<64x102xf32>) {
  // expected-error @+1 {{(f32 inputs: allow-tf32)}}
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<16x64xf32>) x(%x : tensor<16x102xf32>)
      w(%w : tensor<64x102xf32>) m(%m : tensor<64x102xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<64x102xf32>, %w0: tensor<64x102xf32>, %m0: tensor<64x102xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.9 : f32} : tensor<64x102xf32>, tensor<64x102xf32>
    %d = nora.row_normalize %u : tensor<64x102xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<64x102xf32>, tensor<64x102xf32>
    nora.yield %w1, %m1 : tensor<64x102xf32>, tensor<64x102xf32>
  }
  return %wn, %mn : tensor<64x102xf32>, tensor<64x102xf32>
}
