import { describe, expect, it } from 'vitest';
import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';

// Guards the toolchain itself: Nest resolves constructor parameters from decorator metadata, which
// some transformers drop silently (vite 7 did). If this fails, every DI test below is meaningless.
@Injectable()
class Dep {
  readonly value = 42;
}
@Injectable()
class Needs {
  constructor(readonly dep: Dep) {}
}
@Module({ providers: [Dep, Needs] })
class M {}

describe('test toolchain', () => {
  it('keeps decorator metadata so Nest can inject by type', async () => {
    const ref = await Test.createTestingModule({ imports: [M] }).compile();
    expect(ref.get(Needs).dep.value).toBe(42);
  });
});
