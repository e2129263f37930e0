import { Matches } from 'class-validator';

export class ChangeIdParam {
  @Matches(/^CHG-\d{3,}$/, { message: 'change ids look like CHG-001' }) id!: string;
}

export class TemplateIdParam {
  @Matches(/^STD-\d{3,}$/, { message: 'template ids look like STD-001' }) id!: string;
}
